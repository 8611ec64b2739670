// The graph screen beyond drawing: the clusters view (one meta-node per
// cluster, opened into its nodes), and the node panel's edits — familiarity
// and review history, rename, merge, delete — each seen live in the list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup } from '../e2e/lib/server.mjs';
import { dbQuery, loginAs, newPassword, uniqueEmail } from '../e2e/lib/users.mjs';
import { assertClean, launch, newPage, screenshot, signUpInUi, startUiServer } from './lib/browser.mjs';

after(cleanup);

describe('graph screen', () => {
  let server;
  let page;
  let api;
  const ids = {};
  before(async () => {
    let browser;
    [server, browser] = await Promise.all([startUiServer(), launch()]);
    page = await newPage(browser, server);
    const email = uniqueEmail('graph');
    const password = newPassword();
    await signUpInUi(page, email, password);
    api = await loginAs(server, email, password);
    for (const term of ['Mitosis', 'Meiosis', 'Enzyme', 'Substrate', 'Loose end']) {
      const r = await api.call('POST', '/api/v1/nodes', { body: { term, summary: `About ${term}.` } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids[term] = r.body.id;
    }
    // Clusters as the weekly clustering would leave them.
    await dbQuery(server, `UPDATE nodes SET cluster = 'k-cell' WHERE id IN ('${ids.Mitosis}', '${ids.Meiosis}')`);
    await dbQuery(server, `UPDATE nodes SET cluster = 'k-enz' WHERE id IN ('${ids.Enzyme}', '${ids.Substrate}')`);
    await dbQuery(
      server,
      `INSERT INTO clusters (user_id, id, label, top_terms, member_count, mean_familiarity, algorithm, modularity, updated_at) VALUES ` +
        `('${api.id}', 'k-cell', 'Mitosis, Meiosis', '["Mitosis","Meiosis"]', 2, 0, 'leiden', 0.3, 1), ` +
        `('${api.id}', 'k-enz', 'Enzyme, Substrate', '["Enzyme","Substrate"]', 2, 0, 'leiden', 0.3, 1)`,
    );
  });

  const list = () => page.getByTestId('node-list');
  const nodeButton = (term) => list().getByRole('button', { name: term, exact: true });

  test('the clusters view shows one entry per cluster and opens into its nodes', async () => {
    await page.getByRole('link', { name: 'Graph' }).click();
    await nodeButton('Loose end').waitFor();
    await page.getByRole('button', { name: 'Clusters' }).click();
    const clusters = page.getByTestId('cluster-list');
    await clusters.getByRole('button', { name: 'Enzyme, Substrate' }).waitFor();
    assert.match(await page.getByTestId('graph-stats').textContent(), /2 clusters, 1 nodes not clustered yet/);
    await screenshot(page, 'graph-clusters');
    await clusters.getByRole('button', { name: 'Mitosis, Meiosis' }).click();
    await page.getByTestId('cluster-shown').waitFor();
    await nodeButton('Meiosis').waitFor();
    assert.equal(await list().getByRole('button').count(), 2, 'only the cluster\'s nodes');
    await page.getByRole('button', { name: 'All nodes' }).click();
    await nodeButton('Loose end').waitFor();
    assert.equal(await list().getByRole('button').count(), 5);
    assertClean(page);
  });

  test('familiarity set elsewhere shows in the panel with the review history', async () => {
    await nodeButton('Mitosis').click();
    const panel = page.getByTestId('node-panel');
    await panel.getByRole('heading', { name: 'Mitosis' }).waitFor();
    assert.match(await panel.getByTestId('familiarity').textContent(), /Familiarity: 0% \(new\)/);
    const r = await api.call('PATCH', `/api/v1/nodes/${ids.Mitosis}/familiarity`, { body: { value: 0.8 } });
    assert.equal(r.status, 204, JSON.stringify(r.body));
    await panel.getByTestId('reviews').getByText(/self-rated/).waitFor();
    assert.doesNotMatch(await panel.getByTestId('familiarity').textContent(), /0% \(new\)/);
    assertClean(page);
  });

  test('rename, merge and delete from the panel', async () => {
    const panel = page.getByTestId('node-panel');
    await nodeButton('Meiosis').click();
    await panel.getByRole('heading', { name: 'Meiosis' }).waitFor();
    await panel.getByRole('button', { name: 'Rename' }).click();
    await panel.getByLabel('New name').fill('Meiosis II');
    await panel.getByRole('button', { name: 'Save' }).click();
    await nodeButton('Meiosis II').waitFor();

    await nodeButton('Enzyme').click();
    await panel.getByRole('heading', { name: 'Enzyme' }).waitFor();
    await panel.getByRole('button', { name: 'Merge' }).click();
    await panel.getByLabel('Merge “Enzyme” into').selectOption({ label: 'Substrate' });
    await panel.getByRole('button', { name: 'Merge' }).last().click();
    await panel.getByRole('heading', { name: 'Substrate' }).waitFor();
    await nodeButton('Enzyme').waitFor({ state: 'detached' });

    await nodeButton('Loose end').click();
    await panel.getByRole('heading', { name: 'Loose end' }).waitFor();
    await panel.getByRole('button', { name: 'Delete' }).click();
    await panel.getByText('Really delete “Loose end”?').waitFor();
    await panel.getByRole('button', { name: 'Delete' }).click();
    await nodeButton('Loose end').waitFor({ state: 'detached' });
    assert.equal(await list().getByRole('button').count(), 3);
    await screenshot(page, 'graph-edited');
    assertClean(page);
  });

  test('Enter in the search box opens the first match', async () => {
    await page.getByPlaceholder('Find a node').fill('subs');
    await page.getByPlaceholder('Find a node').press('Enter');
    await page.getByTestId('node-panel').getByRole('heading', { name: 'Substrate' }).waitFor();
    assert.match(page.url(), /\?node=/);
    assertClean(page);
  });
});
