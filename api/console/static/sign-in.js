import { api, setKey, takeNext } from "./common.js";

const form = document.getElementById("sign-in-form");
const input = document.getElementById("api-key");
const error = document.getElementById("api-key-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = input.value.trim();
  error.hidden = true;
  input.removeAttribute("aria-invalid");
  if (!key) return showError("Enter an API key.");
  setKey(key);
  let response;
  try {
    response = await api("/v1/generations?limit=1", { keepKeyOn401: true });
  } catch {
    return showError("The API did not answer; try again.");
  }
  if (response.status === 401) {
    sessionStorage.clear();
    return showError("This key was refused (unknown or revoked).");
  }
  location.assign(takeNext());
});

function showError(text) {
  error.textContent = text;
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}
