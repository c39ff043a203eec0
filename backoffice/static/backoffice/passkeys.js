// Passkeys in the back office (backoffice/sign_in.py): sign in with one after the password, or
// add one from "Your second factor". The server speaks WebAuthn's JSON forms (base64url for
// bytes); the browser's API wants ArrayBuffers, hence the conversions.

const toBytes = (text) => {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
};

const toText = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

const csrfToken = () => document.querySelector("input[name=csrfmiddlewaretoken]").value;

const showError = (message) => {
  const box = document.getElementById("passkey-error");
  box.textContent = message;
  // The admin's error style shows even an empty box: given only once there is a message.
  box.classList.add("errornote");
  box.hidden = false;
};

const post = async (url, body) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error.message);
  return answer;
};

const descriptors = (list) => (list || []).map((item) => ({ ...item, id: toBytes(item.id) }));

const signIn = async (button) => {
  const options = await (await fetch(button.dataset.url, { credentials: "same-origin" })).json();
  const credential = await navigator.credentials.get({
    publicKey: {
      ...options,
      challenge: toBytes(options.challenge),
      allowCredentials: descriptors(options.allowCredentials),
    },
  });
  const response = credential.response;
  const url = `${button.dataset.url}?next=${encodeURIComponent(button.dataset.next)}`;
  const answer = await post(url, {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toText(response.clientDataJSON),
      authenticatorData: toText(response.authenticatorData),
      signature: toText(response.signature),
      userHandle: response.userHandle ? toText(response.userHandle) : null,
    },
  });
  window.location.assign(answer.next);
};

const add = async (button) => {
  const options = await (await fetch(button.dataset.url, { credentials: "same-origin" })).json();
  const credential = await navigator.credentials.create({
    publicKey: {
      ...options,
      challenge: toBytes(options.challenge),
      user: { ...options.user, id: toBytes(options.user.id) },
      excludeCredentials: descriptors(options.excludeCredentials),
    },
  });
  const answer = await post(button.dataset.url, {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    name: document.getElementById("id_passkey_name").value,
    response: {
      clientDataJSON: toText(credential.response.clientDataJSON),
      attestationObject: toText(credential.response.attestationObject),
    },
  });
  window.location.assign(answer.next);
};

for (const [id, action] of [
  ["passkey-sign-in", signIn],
  ["passkey-add", add],
]) {
  const button = document.getElementById(id);
  if (button) {
    button.addEventListener("click", () => action(button).catch((error) => showError(error.message)));
  }
}
