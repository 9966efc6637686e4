import { ApiError, apiJson, el, requireKey } from "./common.js";
import { buildForm } from "./schema_form.js";
import { listModels, modelInput } from "./schema_source.js";

const select = document.getElementById("model-select");
const formError = document.getElementById("form-error");
let form = null;
let example = {};

async function chooseModel(id) {
  const input = await modelInput(id);
  example = input.example;
  form = buildForm(document.getElementById("fields"), input.schema);
}

function showFormError(text) {
  formError.textContent = text;
  formError.hidden = !text;
}

async function submit(event) {
  event.preventDefault();
  form.clear();
  showFormError("");
  const button = document.getElementById("submit");
  button.disabled = true;
  try {
    const { body } = await apiJson("/v1/generations", {
      method: "POST",
      json: { model: select.value, input: form.read() },
    });
    location.assign(`/console/generations/${body.id}`);
  } catch (error) {
    button.disabled = false;
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.body.detail)) {
      const left = form.showErrors(error.body.detail, ["body", "input"]);
      if (left.length) showFormError(left.map((i) => `${(i.loc || []).slice(1).join(".")}: ${i.msg}`).join("; "));
    } else {
      showFormError(`Not submitted: ${error.message}`);
    }
  }
}

if (requireKey()) {
  const models = await listModels();
  for (const model of models) select.append(el("option", { value: model.id }, `${model.title} (${model.id})`));
  await chooseModel(select.value);
  select.addEventListener("change", () => chooseModel(select.value));
  document.getElementById("use-example").addEventListener("click", () => form.fill(example));
  document.getElementById("submit-form").addEventListener("submit", submit);
  document.getElementById("submit-form").dataset.ready = "true";
}
