import { LANGUAGES, messages } from './messages.js';

function initial() {
  try {
    const saved = localStorage.getItem('loci.lang');
    if (saved && LANGUAGES[saved]) return saved;
  } catch {
    /* storage may be off */
  }
  const nav = (navigator.language || 'en').slice(0, 2);
  return LANGUAGES[nav] ? nav : 'en';
}

export const i18n = $state({ lang: initial() });

export function setLang(lang) {
  if (!LANGUAGES[lang]) return;
  i18n.lang = lang;
  document.documentElement.lang = lang;
  try {
    localStorage.setItem('loci.lang', lang);
  } catch {
    /* ignore */
  }
}

/** The message `key` in the current language with {params} filled in. */
export function t(key, params = {}) {
  const m = messages[i18n.lang]?.[key] ?? messages.en[key] ?? key;
  return m.replace(/\{(\w+)\}/g, (_, k) => (params[k] !== undefined && params[k] !== null ? String(params[k]) : ''));
}

export function formatDate(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString(i18n.lang);
}

export { LANGUAGES };
