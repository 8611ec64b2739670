// Documents for tests: a minimal valid PDF made in memory, a multipart
// upload as a browser sends it, and polling a document until it settles.
import assert from 'node:assert/strict';
import { sleep } from './server.mjs';
import { expectStatus } from './users.mjs';

/** A minimal valid PDF: one page per text (Helvetica), an xref table. */
export function makePdf(pages) {
  const esc = (t) => t.replace(/[\\()]/g, (c) => `\\${c}`);
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>'];
  const kids = pages.map((_, i) => `${3 + 2 * i} 0 R`).join(' ');
  objs.push(`<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`);
  const font = 3 + 2 * pages.length;
  pages.forEach((text, i) => {
    const lines = text.split('\n').map((l, k) => `BT /F1 11 Tf 50 ${740 - 14 * k} Td (${esc(l)}) Tj ET`);
    const stream = lines.join('\n');
    objs.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${4 + 2 * i} 0 R /Resources << /Font << /F1 ${font} 0 R >> >> >>`);
    objs.push(`<< /Length ${Buffer.byteLength(stream)} >>\nstream\n${stream}\nendstream`);
  });
  objs.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  let out = '%PDF-1.4\n';
  const offs = [];
  objs.forEach((o, i) => {
    offs.push(Buffer.byteLength(out));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out);
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const o of offs) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R /Info << /Title (Cell Biology Notes) >> >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

export const PAGE_TEXT = [
  'Cells are the basic units of life.\nEvery organism is made of one or more cells.\nThe cell membrane keeps the inside apart.',
  'Mitochondria produce most of the chemical energy.\nThey are called the powerhouse of the cell.\nThey hold their own DNA.',
  'Ribosomes translate messenger RNA into proteins.\nProteins fold into shapes that decide their work.',
];

/** POST /api/v1/documents with one file part; resolves like call(). */
export async function upload(s, user, bytes, filename, type = 'application/octet-stream') {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), filename);
  const res = await fetch(`${s.url}/api/v1/documents`, { method: 'POST', headers: user ? { Authorization: `Bearer ${user.accessToken}` } : {}, body: form });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Poll a document until its status is final (or want); resolves to it. */
export async function settle(s, user, id, { want, ms = 30000 } = {}) {
  const end = Date.now() + ms;
  let doc;
  while (Date.now() < end) {
    doc = expectStatus(await user.call('GET', `/api/v1/documents/${id}`), 200, null, 'poll').body;
    if (want ? doc.status === want : ['done', 'failed', 'cancelled'].includes(doc.status)) return doc;
    await sleep(50);
  }
  assert.fail(`document ${id} still ${doc?.status} after ${ms} ms: ${JSON.stringify(doc)}`);
}

