// The OpenAPI document against the validator and against the route table
// (`loci routes`), and the version endpoint and command.
import SwaggerParser from '@apidevtools/swagger-parser';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup, runLoci, startServer } from './lib/server.mjs';

after(cleanup);

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

let srv;
before(async () => {
  srv = await startServer();
});

async function openapi() {
  const res = await fetch(`${srv.url}/api/v1/openapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  return JSON.parse(await res.text());
}

async function routeTable() {
  const r = await runLoci(['routes']);
  assert.equal(r.code, 0, r.stderr);
  const routes = JSON.parse(r.stdout);
  assert.ok(Array.isArray(routes) && routes.length > 0, 'loci routes prints a non-empty JSON array');
  for (const x of routes) {
    assert.deepEqual(Object.keys(x).sort(), ['method', 'path', 'summary'], `route entry ${JSON.stringify(x)}`);
    assert.match(x.method, /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/);
    assert.match(x.path, /^\//);
    assert.equal(typeof x.summary, 'string');
    assert.ok(x.summary.length > 0, `route ${x.method} ${x.path} has a summary`);
  }
  return routes;
}

describe('OpenAPI document', () => {
  test('GET /api/v1/openapi.json is an OpenAPI 3.1.x document that passes the validator', async () => {
    const doc = await openapi();
    assert.match(doc.openapi, /^3\.1\.\d+$/, `openapi version ${doc.openapi}`);
    // validate() dereferences in place: give it a copy.
    const api = await SwaggerParser.validate(structuredClone(doc));
    assert.equal(api.openapi, doc.openapi);
    assert.equal(typeof doc.info?.title, 'string');
    assert.ok(doc.paths && Object.keys(doc.paths).length > 0, 'the document has paths');
  });

  test('the route table and the document list exactly the same operations', async () => {
    const doc = await openapi();
    const routes = await routeTable();
    const fromTable = routes.map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')}`);
    const fromDoc = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) if (item[m]) fromDoc.push(`${m} ${path}`);
    }
    assert.equal(new Set(fromTable).size, fromTable.length, `the route table has duplicates: ${fromTable}`);
    const drift = {
      routesNotInDocument: fromTable.filter((x) => !fromDoc.includes(x)),
      documentedButNotRouted: fromDoc.filter((x) => !fromTable.includes(x)),
    };
    assert.deepEqual(drift, { routesNotInDocument: [], documentedButNotRouted: [] }, 'the route table (loci routes) and the OpenAPI document have drifted apart');
  });

  test('every documented GET without path parameters is really served (not 404/405)', async () => {
    const doc = await openapi();
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!item.get || path.includes('{')) continue;
      const res = await fetch(`${srv.url}${path}`);
      await res.arrayBuffer();
      assert.ok(Object.keys(item.get.responses).includes(String(res.status)), `GET ${path} answered ${res.status}, which the document does not list`);
    }
  });
});

describe('version', () => {
  test('GET /api/v1/version is {name:"loci", version, api:"v1"} and matches `loci version`', async () => {
    const res = await fetch(`${srv.url}/api/v1/version`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const v = await res.json();
    assert.equal(v.name, 'loci');
    assert.equal(v.api, 'v1');
    assert.match(v.version, /^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, `version ${v.version} looks like semver`);

    const cli = await runLoci(['version']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`^loci ${v.version.replace(/[.+]/g, '\\$&')}(\\s|$)`), `loci version printed ${JSON.stringify(cli.stdout)}`);
  });
});
