// Markdown to safe HTML: marked renders, DOMPurify sanitises. Citation
// markers [n] that name a known citation become focusable references.
import DOMPurify from 'dompurify';
import { marked } from 'marked';

marked.setOptions({ gfm: true, breaks: false });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('rel', 'noopener noreferrer');
    if (/^https?:/i.test(node.getAttribute('href') || '')) node.setAttribute('target', '_blank');
  }
});

export function renderMarkdown(md, citationNumbers = []) {
  const known = new Set(citationNumbers.map(Number));
  let html = marked.parse(md || '', { async: false });
  if (known.size) {
    html = html.replace(/\[(\d{1,3})\]/g, (m, n) =>
      known.has(Number(n)) ? `<sup><a class="cite-ref" href="#cite-${n}" data-cite="${n}">[${n}]</a></sup>` : m,
    );
  }
  return DOMPurify.sanitize(html, { FORBID_ATTR: ['style'], FORBID_TAGS: ['style'] });
}
