// site.mjs — the site in a real browser (Debian's chromium, driven by
// playwright-core), against a real cluster started by `linkraft demo`:
// sign up, log in, post, like, unlike, log out — and stay logged in, with
// every post, after the node holding the leadership is killed with -9; then
// a discussion (comment, nested replies, edit, delete) at desktop and
// mobile widths, the one-time messages, the return after logging in;
// finding things (the header's search box, a domain's links, the feed) and
// keeping order (flags on a link and on a comment, a moderator's delete with a reason, a ban, the
// moderation log); and an
// accessibility audit (axe-core) of every page type, light and dark, that
// fails on any serious or critical violation.
// Screenshots of every step go to build/artifacts/browser/. Ends with the
// line "N passed, N failed" like every other suite.
//
//   node tests/browser/site.mjs            (LINKRAFT_BIN picks the binary)
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.LINKRAFT_BIN || path.join(root, 'build', 'linkraft');
const shots = path.join(root, 'build', 'artifacts', 'browser');
// axe-core from tests/browser/node_modules (npm ci; nothing is downloaded here).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(shots, { recursive: true });

let passed = 0, failed = 0;
function check(what, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what} ${detail}`); }
  return ok;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false))
      .once('listening', () => s.close(() => resolve(true))).listen(port, '127.0.0.1');
  });
}

// A demo port P needs P, P+1..3 (HTTP) and P-1000+1..3 (Raft) free.
async function pickPort() {
  for (let tries = 0; tries < 200; tries++) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    const all = [p, p + 1, p + 2, p + 3, p - 999, p - 998, p - 997];
    let ok = true;
    for (const q of all) ok = ok && await portFree(q);
    if (ok) return p;
  }
  throw new Error('no free ports');
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'linkraft-browser-'));
const port = await pickPort();
const base = `http://127.0.0.1:${port}`;
// A script clicks faster than a person: the per-user limits on new content
// (SPEC §5) would refuse its replies.
const demo = spawn(bin, ['demo', '--data', path.join(dir, 'data'), '--port', String(port), '--rate-limits', 'off'],
                   { stdio: ['ignore', 'pipe', 'inherit'] });
let demoOut = '';
demo.stdout.on('data', (d) => { demoOut += d.toString(); });

let browser;
try {
  // The demo prints "node N   PID ..." for each node.
  const pids = await waitFor('the demo to print its PIDs', () => {
    const m = [...demoOut.matchAll(/^\s+node (\d+)\s+(\d+)\s/gm)];
    return m.length === 3 ? Object.fromEntries(m.map((x) => [x[1], Number(x[2])])) : null;
  });
  await waitFor('the site to answer', async () => (await fetch(`${base}/`)).status === 200);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  const errors = [];
  let expectError = false; // while a step asks for an error page on purpose
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !expectError) errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400 && !expectError) errors.push(`${r.status()} ${r.url()}`); });
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const me = async () => (await page.locator('header .me a').first().textContent()).trim();
  const flash = async () => (await page.locator('p.flash').count()) ? (await page.textContent('p.flash')).trim() : '';

  // axe-core on the page as it is (evaluated through the DevTools protocol,
  // so the site's CSP, which allows no script, stays on). WCAG 2.x A and AA
  // rules and best practices; any serious or critical violation fails.
  const audited = [];
  async function audit(name) {
    await page.evaluate(axeSource);
    const res = await page.evaluate(async () => {
      const r = await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, n: v.nodes.length,
                                        where: v.nodes.slice(0, 2).map((x) => x.target.join(' ')).join(' | '),
                                        why: v.nodes.slice(0, 1).map((x) => x.failureSummary + ' ' + x.html).join('') }));
    });
    const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    audited.push(`${name}: ${res.length ? res.map((v) => `${v.id}(${v.impact})`).join(' ') : 'no violations'}`);
    check(`axe: no serious or critical violation on ${name}`, bad.length === 0, JSON.stringify(bad));
  }
  // Light and dark (the dark scheme has its own colours to get right).
  async function auditBoth(name) {
    await audit(name);
    await page.emulateMedia({ colorScheme: 'dark' });
    await audit(`${name} (dark)`);
    await page.emulateMedia({ colorScheme: 'light' });
  }

  const user = `alice${Date.now() % 100000}`;
  await page.goto(`${base}/`);
  await auditBoth('the front page, empty');
  await page.goto(`${base}/?p=999`);
  check('a page past the end says there are no more links',
        (await page.textContent('main')).includes('No more links'));
  await page.goto(`${base}/signup`);
  await auditBoth('the sign-up form');
  await page.fill('#username', 'x');
  await page.fill('#password', 'correct horse battery');
  await page.evaluate(() => document.querySelector('#username').removeAttribute('minlength'));
  expectError = true;
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  expectError = false;
  check('an error is a sentence tied to its field',
        (await page.textContent('#form-err')).trim() === 'A username is 3 to 20 characters.' &&
        await page.getAttribute('#username', 'aria-invalid') === 'true' &&
        await page.getAttribute('#username', 'aria-describedby') === 'form-err');
  await audit('the sign-up form with an error');
  await page.goto(`${base}/signup`);
  await page.fill('#username', user);
  await page.fill('#password', 'correct horse battery');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  await shot('01-signed-up');
  check('sign up logs the user in', await me() === user);
  check('and says so, once', (await flash()).startsWith('Welcome!'));
  await page.goto(`${base}/login`);
  check('a logged-in user gets no login form', await page.locator('#password').count() === 0);
  await page.goto(`${base}/`);
  check('the message is gone on the next page', await flash() === '');

  await Promise.all([page.waitForNavigation(), page.click('header form[action="/logout"] button')]);
  await shot('02-logged-out');
  check('log out', await me() === 'log in');
  check('log out says so', await flash() === 'You are logged out.');

  await page.goto(`${base}/login`);
  await auditBoth('the login form');
  await page.fill('#username', user);
  await page.fill('#password', 'correct horse battery');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  await shot('03-logged-in');
  check('log in', await me() === user);
  check('log in says so', await flash() === 'You are logged in.');

  await page.goto(`${base}/submit`);
  await auditBoth('the submit form');
  await page.fill('#title', 'Raft: In Search of an Understandable Consensus Algorithm');
  await page.fill('#url', 'https://raft.github.io/raft.pdf');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('posting says so', await flash() === 'Your link is posted.');
  await page.goto(`${base}/submit`);
  await page.fill('#title', 'The same paper again');
  await page.fill('#url', 'http://raft.github.io/raft.pdf');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('a duplicate URL shows the existing link, and says so',
        (await flash()).startsWith('That URL was already posted') &&
        (await page.textContent('h1')).includes('In Search of an Understandable'));
  await page.goto(`${base}/submit`);
  await page.fill('#title', 'An international domain name');
  await page.fill('#url', 'https://bücher.example/');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('an international domain name is accepted, shown in Unicode',
        (await page.textContent('article .dom')).includes('bücher.example') &&
        (await page.getAttribute('article h1 a', 'href')) === 'https://xn--bcher-kva.example/');
  await page.goto(`${base}/new`);
  await shot('04-posted');
  await auditBoth('the new links page, logged in');
  const item = page.locator('li', { hasText: 'In Search of an Understandable' }).first();
  check('the post is on /new', await item.count() === 1);
  check('its domain is shown', (await item.textContent()).includes('raft.github.io'));

  const likes = async () => Number((await item.locator('.meta').textContent()).match(/(\d+) like/)[1]);
  await page.setViewportSize({ width: 390, height: 844 });
  const box = await item.locator('button.up').boundingBox();
  check('the like button is at least 24x24 on a phone', box && box.width >= 24 && box.height >= 24, JSON.stringify(box));
  await page.setViewportSize({ width: 900, height: 900 });
  const itemId = await item.getAttribute('id');
  await Promise.all([page.waitForNavigation(), item.locator('button.up').click()]);
  await shot('05-liked');
  check('like', await likes() === 1);
  check('a like returns to its row', new URL(page.url()).hash === `#${itemId}`, page.url());
  check('liked is shown by more than colour', await item.locator('button.up.on').evaluate(
    (b) => getComputedStyle(b).boxShadow !== 'none'));
  await Promise.all([page.waitForNavigation(), item.locator('button.up').click()]);
  await shot('06-unliked');
  check('unlike', await likes() === 0);
  await Promise.all([page.waitForNavigation(), item.locator('button.up').click()]);

  // Kill -9 the leader; the user stays logged in and keeps posting.
  const cluster = await (await fetch(`${base}/api/v1/cluster`)).json();
  const leader = String(cluster.leader);
  check('a leader is known', Boolean(pids[leader]), JSON.stringify(cluster));
  process.kill(pids[leader], 'SIGKILL');
  await waitFor('a new leader', async () => {
    const c = await (await fetch(`${base}/api/v1/cluster`)).json();
    return c.leader && String(c.leader) !== leader;
  });
  await page.goto(`${base}/new`);
  await shot('07-after-leader-killed');
  check('still logged in after the leader died', await me() === user);
  check('the post survived', await page.locator('li', { hasText: 'In Search of an Understandable' }).count() === 1);
  check('and its like', await likes() === 1);

  await page.goto(`${base}/submit`);
  await page.fill('#title', 'Posted after the leader was killed');
  await page.fill('#url', 'https://example.org/after-failover');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  await page.goto(`${base}/new`);
  const after = page.locator('li', { hasText: 'Posted after the leader was killed' }).first();
  check('posting works after the failover', await after.count() === 1);
  await Promise.all([page.waitForNavigation(), after.locator('button.up').click()]);
  check('liking works after the failover',
        (await after.locator('.meta').textContent()).includes('1 like'));
  await shot('08-posted-after-failover');

  // The discussion: a comment, a reply, a reply to the reply, an edit, a
  // deletion that leaves the replies in place. All forms, no JavaScript.
  await page.goto(`${base}/new`);
  await Promise.all([page.waitForNavigation(),
    page.locator('li', { hasText: 'In Search of an Understandable' }).first().locator('a', { hasText: /comment/ }).click()]);
  await page.fill('#text', 'First comment, see https://raft.github.io/ for more.\n\n  leader = elect()');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('a comment appears on the link page', await page.locator('ul.cs > li').count() === 1);
  check('its URL became a link', await page.locator('ul.cs a[href="https://raft.github.io/"]').count() === 1);
  check('its code line is code', (await page.locator('ul.cs pre code').textContent()) === 'leader = elect()');
  await Promise.all([page.waitForNavigation(), page.locator('ul.cs a', { hasText: 'reply' }).first().click()]);
  await page.fill('#text', 'A reply');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  await Promise.all([page.waitForNavigation(), page.locator('ul.cs ul a', { hasText: 'reply' }).first().click()]);
  await page.fill('#text', 'A reply to the reply');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('replies nest two levels down', await page.locator('ul.cs ul ul > li').count() === 1);
  check('the heading counts three comments', (await page.locator('#cs').textContent()).trim() === '3 comments');
  await Promise.all([page.waitForNavigation(), page.locator('ul.cs ul > li').first().locator('a', { hasText: 'edit' }).first().click()]);
  await page.fill('#text', 'An edited reply');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  const thread = async () => page.locator('ul.cs').textContent();
  check('an edit shows, marked edited', (await thread()).includes('An edited reply') && (await thread()).includes('edited'));
  await shot('10-discussion');
  await auditBoth('a link page with its thread, logged in');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('11-discussion-mobile');
  check('the thread fits a phone', await page.evaluate(() => document.documentElement.scrollWidth <= 390));
  await page.setViewportSize({ width: 900, height: 900 });
  const linkPage = page.url().replace(/#.*$/, '');
  // The comment pages: reply and edit forms, at both widths.
  await Promise.all([page.waitForNavigation(), page.locator('ul.cs ul > li').first().locator('a', { hasText: 'edit' }).first().click()]);
  await shot('13-editing');
  await auditBoth('the comment edit form');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('13-editing-mobile');
  await page.setViewportSize({ width: 900, height: 900 });
  await page.goto(linkPage);
  await Promise.all([page.waitForNavigation(), page.locator('ul.cs a', { hasText: 'reply' }).first().click()]);
  await audit('the reply form');
  await page.goto(`${linkPage}/edit`);
  await audit('the link edit form');
  await page.goto(linkPage);
  await Promise.all([page.waitForNavigation(),
    page.locator('ul.cs > li > div').first().locator('button', { hasText: 'delete' }).click()]);
  check('a deleted comment with replies stays as [deleted]', (await thread()).includes('[deleted]') &&
        !(await thread()).includes('First comment') && (await thread()).includes('A reply to the reply'));
  await shot('12-discussion-after-delete');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('12-discussion-after-delete-mobile');
  await page.setViewportSize({ width: 900, height: 900 });

  await page.goto(`${base}/user/${user}`);
  await auditBoth('a user page');
  await page.goto(`${base}/user/${user}/comments`);
  await audit("a user's comments");
  await page.goto(`${base}/settings`);
  await auditBoth('the settings page');
  await page.goto(`${base}/top`);
  await audit('the top links page');

  // Finding things: the header's search box, a row's domain, the feed.
  await page.goto(`${base}/`);
  const searchBox = 'header form[role=search] input[name=q]';
  await page.fill(searchBox, 'understandable');
  await Promise.all([page.waitForNavigation(), page.press(searchBox, 'Enter')]);
  check('the header search box finds a post', new URL(page.url()).pathname === '/search' &&
        await page.locator('ol.links li', { hasText: 'In Search of an Understandable' }).count() === 1, page.url());
  await shot('16-search');
  await auditBoth('the search page');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('16-search-mobile');
  check('the header with its search box fits a phone', await page.evaluate(() => document.documentElement.scrollWidth <= 390));
  await page.setViewportSize({ width: 900, height: 900 });
  await Promise.all([page.waitForNavigation(), page.locator('ol.links li .dom a').first().click()]);
  check("a row's domain leads to its links", new URL(page.url()).pathname === '/from/raft.github.io' &&
        await page.locator('ol.links li').count() >= 1, page.url());
  await shot('17-from-domain');
  await auditBoth('a domain page');
  const feed = await fetch(new URL(await page.getAttribute('footer a[href="/feed"]', 'href'), base));
  check('the footer links the Atom feed', feed.status === 200 &&
        (feed.headers.get('content-type') || '').startsWith('application/atom+xml') &&
        (await feed.text()).includes('In Search of an Understandable'));

  // Keeping order: a second user posts spam and comments; the first flags
  // the link, is made a moderator, deletes both with a reason, bans them.
  const ctx2 = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const p2 = await ctx2.newPage();
  const spammer = `spam${Date.now() % 100000}`;
  await p2.goto(`${base}/signup`);
  await p2.fill('#username', spammer);
  await p2.fill('#password', 'correct horse battery');
  await Promise.all([p2.waitForNavigation(), p2.click('form.box button')]);
  await p2.goto(`${base}/submit`);
  await p2.fill('#title', 'Cheap watches, best prices');
  await p2.fill('#url', 'https://spam.example/watches');
  await Promise.all([p2.waitForNavigation(), p2.click('form.box button')]);
  const spamPage = p2.url().replace(/#.*$/, '');
  await p2.goto(linkPage);
  await p2.fill('#text', 'Buy cheap watches at spam.example');
  await Promise.all([p2.waitForNavigation(), p2.click('form.box button')]);

  await page.goto(spamPage);
  await Promise.all([page.waitForNavigation(), page.locator('article button', { hasText: /^flag$/ }).click()]);
  check('a flag says it counted, once, and can be taken back',
        (await flash()).startsWith('Your flag is counted') &&
        await page.locator('article button', { hasText: /^unflag$/ }).count() === 1);
  await shot('18-flagged');
  await auditBoth('a link page after a flag');
  check('no moderator form for a user who is not one', await page.locator('form.mod').count() === 0);

  // A comment is flagged from its row in the thread, like a link from its
  // page: the form toggles, says so once and returns to the comment.
  await page.goto(linkPage);
  const spamRow = page.locator('ul.cs > li', { hasText: 'Buy cheap watches' }).first();
  const spamId = await spamRow.getAttribute('id');
  const rowFlag = (label) => spamRow.locator(':scope > div button', { hasText: new RegExp(`^${label}$`) });
  check("a flag button on another's comment, none on one's own",
        await rowFlag('flag').count() === 1 &&
        await page.locator(`ul.cs li:not(#${spamId}) > div button`, { hasText: /flag$/ }).count() === 0);
  await page.setViewportSize({ width: 390, height: 844 });
  const flagBox = await rowFlag('flag').boundingBox();
  check("a comment's flag button is at least 24x24 on a phone", flagBox && flagBox.width >= 24 && flagBox.height >= 24,
        JSON.stringify(flagBox));
  await page.setViewportSize({ width: 900, height: 900 });
  await Promise.all([page.waitForNavigation(), rowFlag('flag').click()]);
  check('a comment flag says it counted, once, and returns to its row',
        (await flash()).startsWith('Your flag on the comment is counted') &&
        new URL(page.url()).hash === `#${spamId}` && await rowFlag('unflag').count() === 1, page.url());
  await shot('18-comment-flagged');
  await auditBoth('a thread after a comment flag');
  await Promise.all([page.waitForNavigation(), rowFlag('unflag').click()]);
  check('a comment flag can be taken back', (await flash()).startsWith('Your flag is taken back') &&
        new URL(page.url()).hash === `#${spamId}` && await rowFlag('flag').count() === 1);
  await page.goto(linkPage);
  check('the message is shown once', (await flash()) === '');

  const data = path.join(dir, 'data');
  execFileSync(bin, ['moderator', 'add', '--cluster', path.join(data, 'cluster.txt'),
                     '--secret-file', path.join(data, 'secret'), user], { stdio: 'pipe' });
  await page.goto(spamPage);
  check('a moderator sees a delete form with a reason field',
        await page.locator('article form.mod #reason').count() === 1);
  await shot('19-moderator-link');
  await auditBoth('a link page, as a moderator');
  await page.evaluate(() => document.querySelector('#reason').removeAttribute('required'));
  expectError = true;
  await Promise.all([page.waitForNavigation(), page.locator('form.mod button').click()]);
  expectError = false;
  check("a delete without a reason is refused, the error tied to the field",
        (await page.textContent('#reason-err')).trim().startsWith('Give a reason') &&
        await page.getAttribute('#reason', 'aria-invalid') === 'true' &&
        await page.getAttribute('#reason', 'aria-describedby') === 'reason-err');
  await shot('20-moderator-delete-error');
  await auditBoth('the moderator delete form with an error');
  await page.fill('#reason', 'Spam: watches, nothing to discuss');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('the delete lands on the moderation log, which says so once',
        new URL(page.url()).pathname === '/moderation' && (await flash()).startsWith('Deleted.') &&
        (await page.textContent('table')).includes('Spam: watches, nothing to discuss'));
  await page.goto(linkPage);
  await Promise.all([page.waitForNavigation(),
    page.locator('ul.cs li', { hasText: 'Buy cheap watches' }).locator('a', { hasText: 'delete' }).click()]);
  await shot('21-moderator-comment-delete');
  await auditBoth("the moderator's comment delete form");
  await page.fill('#reason', 'Spam in a discussion');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check("a moderator deletes another's comment", (await flash()).startsWith('Deleted.') &&
        (await page.textContent('table')).includes('delete_comment'));

  await page.goto(`${base}/user/${spammer}`);
  await page.fill('#reason', 'A spam account');
  await Promise.all([page.waitForNavigation(), page.locator('form.mod button', { hasText: 'ban' }).click()]);
  check('a ban says so and shows on the user page', (await flash()).startsWith('The user is banned') &&
        (await page.textContent('main')).includes('Banned by'));
  await shot('22-banned');
  await auditBoth('a user page, banned, as a moderator');
  await p2.goto(`${base}/`);
  check("the banned user's session ended",
        (await (await p2.locator('header .me a').first().textContent()).trim()) === 'log in');
  await ctx2.close();
  await page.goto(`${base}/moderation`);
  check('the moderation log lists the ban and the deletes, newest first',
        (await page.locator('tbody tr td:nth-child(3)').allTextContents()).slice(0, 3).join(',') ===
        'ban,delete_comment,delete_link');
  await shot('23-moderation-log');
  await auditBoth('the moderation log');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('23-moderation-log-mobile');
  check('the moderation log fits a phone', await page.evaluate(() => document.documentElement.scrollWidth <= 390));
  await page.setViewportSize({ width: 900, height: 900 });

  await page.goto(`${base}/status`);
  await shot('09-status');
  check('the status page names the members', (await page.textContent('main')).includes('leader'));
  check('a killed node is not listed as a follower',
        (await page.textContent(`table tr:has(td:text-is("${leader}"))`)).includes('unreachable') ||
        !(await page.textContent('main')).includes(`node ${leader}`));
  check('only /status says which node served the page',
        (await page.textContent('main')).includes('This page was served by'));
  await auditBoth('the status page');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('09-status-mobile');
  check('the status page fits a phone', await page.evaluate(() => document.documentElement.scrollWidth <= 390));
  await audit('the status page on a phone');
  await page.setViewportSize({ width: 900, height: 900 });

  // A visitor sent to log in from a discussion comes back to it.
  await Promise.all([page.waitForNavigation(), page.click('header form[action="/logout"] button')]);
  await page.goto(linkPage);
  await auditBoth('a link page with its thread, logged out');
  check('no served-by footer on other pages', !(await page.textContent('footer')).includes('served by'));
  await Promise.all([page.waitForNavigation(), page.locator('main a', { hasText: 'Log in' }).first().click()]);
  await page.fill('#username', user);
  await page.fill('#password', 'correct horse battery');
  await shot('14-login-to-return');
  await Promise.all([page.waitForNavigation(), page.click('form.box button')]);
  check('after logging in, back on the discussion', page.url().replace(/#.*$/, '') === linkPage, page.url());
  await shot('15-returned-after-login');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('15-returned-after-login-mobile');
  await page.setViewportSize({ width: 900, height: 900 });
  await page.goto(`${base}/new/`);
  check('/new/ is /new', new URL(page.url()).pathname === '/new');
  expectError = true;
  const notFound = await page.goto(`${base}/no/such/page`);
  expectError = false;
  check('an unknown path is a 404 page', notFound.status() === 404);
  await audit('the 404 page');

  await Promise.all([page.waitForNavigation(), page.click('header form[action="/logout"] button')]);
  check('log out after the failover', await me() === 'log in');
  check('no script errors in the pages', errors.length === 0, errors.join('; '));
  console.log(`axe-core ${JSON.parse(readFileSync(createRequire(import.meta.url).resolve('axe-core/package.json'), 'utf8')).version}:`);
  for (const a of audited) console.log(`  ${a}`);
  console.log(`screenshots: ${shots}`);
} catch (e) {
  check('browser run', false, e.stack || String(e));
} finally {
  if (browser) await browser.close();
  demo.kill('SIGINT');
  await new Promise((r) => { if (demo.exitCode !== null) r(); else demo.once('exit', r); });
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
