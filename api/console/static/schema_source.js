// Where the submit form's models and input schemas come from: the model catalogue
// (GET /v1/models), the same entries the API validates inputs with.

import { apiJson } from "./common.js";

/** The catalogue's models: [{id, title, kind}]. */
export async function listModels() {
  const { body } = await apiJson("/v1/models");
  return body.items.map((m) => ({ id: m.endpoint_id, title: m.summary, kind: m.output_kind }));
}

/** A model's input: {schema (JSON Schema), example}. */
export async function modelInput(id) {
  const { body } = await apiJson(`/v1/models/${id}`);
  return { schema: body.input_schema, example: body.example || {} };
}
