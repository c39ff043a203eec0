// Shared by the installable apps' service workers (included in their templates): at install,
// keep the files listed in KEEP in the cache named CACHE (its name ends with the digest of
// those files, so a new version makes a new worker); at activation, drop the caches an older
// worker of the same app kept (same name before the digest); asset(request) answers a kept file
// from the cache.
self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(KEEP.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  const app = CACHE.slice(0, CACHE.lastIndexOf("-") + 1);
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith(app) && name !== CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

async function asset(request) {
  const kept = await caches.match(request, { cacheName: CACHE });
  return kept ?? fetch(request);
}
