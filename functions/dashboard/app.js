// wago dashboard: plain JavaScript over the JSON API, no build step.
// The token signed in with lives in sessionStorage and travels only in the
// admintoken or token header. Every value from the server is written with
// textContent, never as HTML.
'use strict';

const POLL_MS = 2000;
const EVENT_CLASSES = ['Message', 'ReadReceipt', 'Presence', 'ChatPresence', 'HistorySync', 'Call',
  'Newsletter', 'LoggedOut', 'Connected', 'Disconnected', 'QR', 'PairSuccess', 'All'];

// What to tell the user in each state where the session needs them.
const ADVICE = {
  failed: 'The last connection attempt failed. Check that this server reaches WhatsApp, then press Connect again.',
  logged_out: 'This device was unlinked (from the phone, or by WhatsApp). Press Connect and scan a new QR code to link it again.',
  replaced: 'Another connection took this device over (the same session opened somewhere else). Stop the other one, then press Connect.',
  banned: 'WhatsApp has temporarily banned this account. Wait until the ban ends before pressing Connect; retrying sooner can make it longer.',
  outdated: 'WhatsApp refused this client version. Update wago to a release with a newer WhatsApp client, then press Connect.',
  disconnected: 'No connection is running. Press Connect to start one (a linked device reconnects; a new one gets a QR code).',
};

const $ = (id) => document.getElementById(id);
let auth = null;    // {kind: 'admin'|'session', token}
let current = null; // the session shown: {token, name}
let timer = null;
let busy = false;
let lastQR = '';
let onConfirm = null;

// --- The API -----------------------------------------------------------

async function api(method, path, headers, body) {
  const init = { method, headers: Object.assign({ Accept: 'application/json' }, headers), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new Error('The server cannot be reached.');
  }
  let env;
  try {
    env = await res.json();
  } catch (e) {
    throw new Error('Unexpected answer from the server (HTTP ' + res.status + ').');
  }
  if (!env.success) throw new Error(env.error || 'HTTP ' + res.status);
  return env.data;
}

const adminHeaders = () => ({ admintoken: auth.token });
const sessionHeaders = (token) => ({ token: token || current.token });

// --- Small DOM helpers -------------------------------------------------

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c === null || c === undefined ? '' : c);
  return e;
}

function show(id, on) { $(id).hidden = !on; }

function say(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

function badge(state) {
  return el('span', { className: 'badge state-' + (state || 'unknown'), textContent: (state || 'unknown').replace('_', ' ') });
}

function when(iso) {
  if (!iso) return '\u2014';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function button(text, cls, onclick) {
  const b = el('button', { type: 'button', className: cls || '', textContent: text });
  b.addEventListener('click', onclick);
  return b;
}

// act runs an action, showing its error in errId; the poll refreshes after.
async function act(errId, fn) {
  say(errId, '');
  try {
    await fn();
  } catch (e) {
    say(errId, e.message);
  }
  poll();
}

function randomToken() {
  const b = new Uint8Array(24);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// --- Sign-in -----------------------------------------------------------

async function signIn(kind, token) {
  if (kind === 'admin') {
    await api('GET', '/session/all', { admintoken: token });
  } else {
    await api('GET', '/session/status', { token });
  }
  auth = { kind, token };
  sessionStorage.setItem('wago.auth', JSON.stringify(auth));
}

function signOut() {
  sessionStorage.removeItem('wago.auth');
  auth = null;
  current = null;
  clearTimeout(timer);
  $('signin-token').value = '';
  render();
}

// --- Views -------------------------------------------------------------

function render() {
  const signedIn = auth !== null;
  show('signin', !signedIn);
  show('signout', signedIn);
  show('live', signedIn);
  show('admin', signedIn && current === null);
  show('session', signedIn && current !== null);
  show('confirm', false);
  $('who').textContent = !signedIn ? '' : auth.kind === 'admin' ? 'admin' : 'session';
  if (signedIn && current !== null) {
    const admin = auth.kind === 'admin';
    show('back', admin);
    show('delete', admin);
    show('dead-card', admin);
  }
  if (signedIn) poll();
}

function openSession(token, name) {
  current = { token, name: name || '' };
  lastQR = '';
  $('qr').removeAttribute('src');
  for (const id of ['s-error', 'send-result', 'send-error', 'wh-result', 'wh-error', 'pair-code']) say(id, '');
  show('pair-help', false);
  $('dead-result').textContent = '';
  $('s-name').textContent = current.name;
  loadWebhook();
  render();
}

function closeSession() {
  current = null;
  render();
}

function confirmDelete(token, name) {
  $('confirm-text').textContent = 'Delete the session \u201c' + name + '\u201d? Its device is logged out and its keys are removed; the token stops working.';
  show('confirm', true);
  onConfirm = () => act(current ? 's-error' : 'admin-error', async () => {
    await api('POST', '/session/delete', Object.assign(adminHeaders(), { token }));
    if (current && current.token === token) current = null;
    render();
  });
}

// --- Polling -----------------------------------------------------------

async function poll() {
  clearTimeout(timer);
  if (auth === null) return;
  if (!busy && !document.hidden) {
    busy = true;
    try {
      if (current === null) await pollAdmin();
      else await pollSession();
    } catch (e) {
      // Shown by each part; a failed poll is tried again.
    } finally {
      busy = false;
    }
  }
  timer = setTimeout(poll, POLL_MS);
}

async function pollAdmin() {
  let rows;
  try {
    rows = await api('GET', '/session/all', adminHeaders());
    say('admin-error', '');
  } catch (e) {
    say('admin-error', e.message);
    return;
  }
  const body = $('sessions');
  body.replaceChildren(...rows.map((r) => {
    const name = button(r.name, 'link', () => openSession(r.token, r.name));
    const actions = el('td', { className: 'actions' },
      Object.assign(button('Connect', '', () => act('admin-error', () => api('POST', '/session/connect', sessionHeaders(r.token), { Immediate: true }))),
        { disabled: r.connected && r.loggedIn }),
      Object.assign(button('Disconnect', 'ghost', () => act('admin-error', () => api('POST', '/session/disconnect', sessionHeaders(r.token)))),
        { disabled: r.state === 'disconnected' }),
      Object.assign(button('Log out', 'ghost', () => act('admin-error', () => api('POST', '/session/logout', sessionHeaders(r.token)))),
        { disabled: !r.jid }),
      button('Delete', 'danger', () => confirmDelete(r.token, r.name)));
    const tr = el('tr', {}, el('td', { className: 'nowrap' }, name), el('td', { className: 'nowrap' }, badge(r.state)), el('td', { className: 'mono', textContent: r.jid || '\u2014' }),
      el('td', { className: 'error-text', textContent: r.lastError || '' }), el('td', { className: 'mono', textContent: r.webhook || '\u2014' }), actions);
    tr.dataset.name = r.name;
    return tr;
  }));
  $('sessions-count').textContent = '(' + rows.length + ')';
  show('sessions-empty', rows.length === 0);
}

async function pollSession() {
  let st;
  try {
    st = await api('GET', '/session/status', sessionHeaders());
  } catch (e) {
    say('s-error', e.message);
    return;
  }
  current.name = st.name;
  $('s-name').textContent = st.name;
  $('s-state').replaceWith(Object.assign(badge(st.state), { id: 's-state' }));
  $('s-jid').textContent = st.jid || '\u2014';
  $('s-since').textContent = when(st.since);
  let advice = ADVICE[st.state] || '';
  if (advice && st.lastError) advice = st.lastError + '. ' + advice;
  say('s-advice', advice);
  $('s-advice').className = 'advice' + (st.state === 'disconnected' ? '' : ' bad');
  show('link', !st.loggedIn);
  $('connect').disabled = st.connected && st.loggedIn;
  $('disconnect').disabled = st.state === 'disconnected';
  $('logout').disabled = !st.jid; // nothing is linked
  await pollQR(st);
  await pollRecent();
  if (auth.kind === 'admin') await pollDead();
}

async function pollQR(st) {
  const img = $('qr');
  if (st.state !== 'qr' || !st.hasQR) {
    img.hidden = true;
    lastQR = '';
    $('qr-wait').textContent = st.state === 'connecting' ? 'Connecting\u2026' : st.state === 'pairing' ? 'Waiting for the code to be entered on the phone\u2026' : 'Press Connect to get a QR code.';
    show('qr-wait', true);
    return;
  }
  try {
    const data = await api('GET', '/session/qr', sessionHeaders());
    if (data.QRCode !== lastQR) {
      lastQR = data.QRCode;
      img.src = data.QRCode;
    }
    img.hidden = false;
    show('qr-wait', false);
  } catch (e) {
    // The code was scanned or expired between the two calls: the next poll tells.
  }
}

async function pollRecent() {
  let data;
  try {
    data = await api('GET', '/webhook/recent', sessionHeaders());
  } catch (e) {
    $('recent-empty').textContent = e.message;
    show('recent-empty', true);
    return;
  }
  $('recent').replaceChildren(...data.events.map((r) => el('tr', { className: 'delivery-' + r.status },
    el('td', { textContent: when(r.time) }),
    el('td', { textContent: r.type + (r.state ? ' (' + r.state + ')' : '') }),
    el('td', {}, el('span', { className: 'badge status-' + r.status, textContent: r.status })),
    el('td', { textContent: String(r.attempts) }),
    el('td', { className: 'error-text', textContent: r.lastError || '' }))));
  $('recent-empty').textContent = 'No event yet. Events appear once a webhook is set and the session receives something.';
  show('recent-empty', data.events.length === 0);
}

async function pollDead() {
  let data;
  try {
    // The session's token filters in a header, never in the URL.
    data = await api('GET', '/webhook/failed?limit=100', Object.assign(adminHeaders(), { token: current.token }));
  } catch (e) {
    $('dead-result').textContent = e.message;
    return;
  }
  const mine = data.failed;
  $('dead').replaceChildren(...mine.map((d) => el('tr', {},
    el('td', { textContent: when(d.time) }),
    el('td', { textContent: d.type }),
    el('td', { textContent: String(d.attempts) }),
    el('td', { className: 'error-text', textContent: d.lastError || '' }),
    el('td', {}, button('Replay', 'ghost', () => replay({ ids: [d.id] }))))));
  $('dead-count').textContent = '(' + mine.length + ')';
  show('dead-empty', mine.length === 0);
  $('replay-all').disabled = mine.length === 0;
}

async function replay(body) {
  try {
    const data = await api('POST', '/webhook/replay', adminHeaders(), body);
    $('dead-result').textContent = data.replayed + ' replayed';
  } catch (e) {
    $('dead-result').textContent = e.message;
  }
  poll();
}

// --- Webhook settings ----------------------------------------------------

function renderEvents(selected) {
  $('wh-events').replaceChildren(...EVENT_CLASSES.map((c) => {
    const box = el('input', { type: 'checkbox', value: c, checked: selected.includes(c) });
    return el('label', { className: 'check' }, box, ' ' + c);
  }));
}

function showWebhook(w) {
  $('wh-url').value = w.webhook || '';
  $('wh-secret').value = '';
  $('wh-secret-state').textContent = w.secretSet ? 'set' : 'not set';
  $('wh-secret-state').className = 'badge ' + (w.secretSet ? 'status-delivered' : '');
  $('wh-format').value = w.format || '';
  renderEvents(w.subscribe || []);
}

async function loadWebhook() {
  showWebhook({ subscribe: ['Message'] });
  try {
    const w = await api('GET', '/webhook', sessionHeaders());
    if (!w.webhook && w.subscribe.length === 0) w.subscribe = ['Message'];
    showWebhook(w);
  } catch (e) {
    say('wh-error', e.message);
  }
}

async function saveWebhook(ev) {
  ev.preventDefault();
  say('wh-result', '');
  say('wh-error', '');
  const body = {
    WebhookURL: $('wh-url').value.trim(),
    Events: Array.from($('wh-events').querySelectorAll('input:checked'), (b) => b.value),
    Format: $('wh-format').value,
  };
  if ($('wh-secret').value.trim() !== '') body.Secret = $('wh-secret').value.trim();
  try {
    showWebhook(await api('POST', '/webhook', sessionHeaders(), body));
    say('wh-result', 'Saved.');
  } catch (e) {
    say('wh-error', e.message);
  }
}

async function deleteWebhook() {
  say('wh-result', '');
  say('wh-error', '');
  try {
    showWebhook(await api('DELETE', '/webhook', sessionHeaders()));
    say('wh-result', 'Webhook removed.');
  } catch (e) {
    say('wh-error', e.message);
  }
}

// --- Wiring ------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    say('signin-error', '');
    const kind = $('kind-session').checked ? 'session' : 'admin';
    try {
      await signIn(kind, $('signin-token').value.trim());
    } catch (e) {
      say('signin-error', e.message);
      return;
    }
    $('signin-token').value = '';
    if (kind === 'session') openSession(auth.token, '');
    else render();
  });
  $('signout').addEventListener('click', signOut);
  $('back').addEventListener('click', closeSession);
  $('confirm-no').addEventListener('click', () => show('confirm', false));
  $('confirm-yes').addEventListener('click', () => { show('confirm', false); if (onConfirm) onConfirm(); });

  $('new-token').value = randomToken();
  $('new-regen').addEventListener('click', () => { $('new-token').value = randomToken(); });
  $('new-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    act('admin-error', async () => {
      const data = await api('POST', '/session/init', adminHeaders(),
        { Name: $('new-name').value.trim(), Token: $('new-token').value.trim(), Os: $('new-os').value.trim() || 'wago' });
      $('new-name').value = '';
      $('new-token').value = randomToken();
      openSession(data.token, data.name);
    });
  });

  $('connect').addEventListener('click', () => act('s-error', () => api('POST', '/session/connect', sessionHeaders(), { Immediate: true })));
  $('disconnect').addEventListener('click', () => act('s-error', () => api('POST', '/session/disconnect', sessionHeaders())));
  $('logout').addEventListener('click', () => act('s-error', () => api('POST', '/session/logout', sessionHeaders())));
  $('delete').addEventListener('click', () => confirmDelete(current.token, current.name));
  $('pair-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    say('pair-code', '');
    show('pair-help', false);
    act('s-error', async () => {
      const data = await api('POST', '/session/pair', sessionHeaders(), { Phone: $('pair-phone').value.trim() });
      const code = data.LinkingCode || '';
      say('pair-code', code.length === 8 ? code.slice(0, 4) + '-' + code.slice(4) : code);
      show('pair-help', code !== '');
    });
  });
  $('send-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    say('send-result', '');
    say('send-error', '');
    try {
      const data = await api('POST', '/send/text', sessionHeaders(), { Phone: $('send-phone').value.trim(), Body: $('send-body').value });
      say('send-result', 'Sent (message ID ' + (data.Id || data.id || '?') + ').');
    } catch (e) {
      say('send-error', e.message);
    }
  });
  $('wh-form').addEventListener('submit', saveWebhook);
  $('wh-delete').addEventListener('click', deleteWebhook);
  $('replay-all').addEventListener('click', () => replay({ token: current.token }));
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });

  try {
    const saved = JSON.parse(sessionStorage.getItem('wago.auth') || 'null');
    if (saved && saved.token && (saved.kind === 'admin' || saved.kind === 'session')) auth = saved;
  } catch (e) {
    sessionStorage.removeItem('wago.auth');
  }
  if (auth && auth.kind === 'session') openSession(auth.token, '');
  else render();
});
