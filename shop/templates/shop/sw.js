// The till's service worker. It keeps the till's files (style, scripts, icons, manifest) and
// one page, the one that says a payment needs a connection, so that the installed till starts
// and says so plainly without a network. It never keeps a page of the till: a payment, its
// answer, the day's payments and takings always come from the server, or not at all.
const CACHE = {{ cache_name|safe }};
const OFFLINE = {{ offline_url|safe }};
const ASSETS = {{ asset_urls|safe }};
const KEEP = [OFFLINE, ...ASSETS];
{% include "core/sw_keep.js" %}

// A page of the till (a payment sent included) goes to the network; only when the network
// fails is the offline page shown instead. Nothing of the answer is kept.
async function page(request) {
  try {
    return await fetch(request);
  } catch (error) {
    const kept = await caches.match(OFFLINE, { cacheName: CACHE });
    if (kept) return kept;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (request.method === "GET" && ASSETS.includes(url.pathname)) {
    event.respondWith(asset(request));
  }
  // Anything else goes to the network untouched.
});
