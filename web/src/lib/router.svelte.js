// A small history-API router: the server falls back to index.html for any
// path that is not a file, so /graph, /documents … load the app directly.
export const route = $state({ path: location.pathname, query: new URLSearchParams(location.search) });

export function navigate(to, { replace = false } = {}) {
  const u = new URL(to, location.origin);
  if (replace) history.replaceState({}, '', u.pathname + u.search);
  else history.pushState({}, '', u.pathname + u.search);
  route.path = u.pathname;
  route.query = new URLSearchParams(u.search);
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => {
  route.path = location.pathname;
  route.query = new URLSearchParams(location.search);
});

/** onclick for <a href>: navigate in the app unless a modifier asks for a new tab. */
export function link(e) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.currentTarget;
  if (a.target || a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
