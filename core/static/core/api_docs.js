// Draws the schema named by this script's data-schema-url with Redoc. Redoc adds its styles as
// <style> elements as it runs: they must carry the page's Content-Security-Policy nonce, which
// this script reads from its own nonce attribute, or the browser refuses them.
const script = document.currentScript;
Redoc.init(
  script.dataset.schemaUrl,
  { ...JSON.parse(script.dataset.settings), nonce: script.nonce },
  document.getElementById("redoc-container"),
);
