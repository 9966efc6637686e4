// Where the submit form's models and input schemas come from: the one place to change when
// the source changes. Today the API's own OpenAPI document (its model routes' request bodies
// are the schemas the API validates with, from the same registry).

let openapi = null;

async function openApiDocument() {
  if (!openapi) {
    const response = await fetch("/openapi.json", { cache: "no-store", credentials: "omit" });
    if (!response.ok) throw new Error(`/openapi.json answered ${response.status}`);
    openapi = await response.json();
  }
  return openapi;
}

function resolve(doc, schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.replace("#/components/schemas/", "");
    return resolve(doc, doc.components.schemas[name]);
  }
  return schema;
}

/** Model endpoint ids with their summaries: [{id, title}]. */
export async function listModels() {
  const doc = await openApiDocument();
  return Object.entries(doc.paths)
    .filter(([, item]) => item.post && item.post.tags && item.post.tags.includes("fal-compatible queue"))
    .map(([path, item]) => ({ id: path.slice(1), title: item.post.summary.replace(/^Submit: /, "") }));
}

/** A model's input: {schema (JSON Schema, refs resolved at the top), example}. */
export async function modelInput(id) {
  const doc = await openApiDocument();
  const item = doc.paths[`/${id}`];
  if (!item || !item.post) throw new Error(`unknown model ${id}`);
  const body = item.post.requestBody.content["application/json"];
  const schema = resolve(doc, body.schema);
  const properties = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    properties[name] = resolve(doc, prop);
  }
  return { schema: { ...schema, properties }, example: body.example || {} };
}
