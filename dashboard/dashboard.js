// The Tollgate usage dashboard in the browser: login (token in sessionStorage), search, bars, uPlot charts, projections, reports.
'use strict';
(() => {
  const TOKEN_KEY = 'tollgate-admin-token';
  const KIND_NAMES = { geocoding: 'Geocoding', isolines: 'Isolines', routing: 'Routing' };
  const $ = (id) => document.getElementById(id);
  const number = (value) => Number(value).toLocaleString('en-US', { maximumFractionDigits: 3 });
  const day = (iso) => iso.slice(0, 10);
  let current = null;
  const charts = [];

  /** Creates an element with attributes and children; text is never parsed as HTML. */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === 'text') node.textContent = value;
      else if (name === 'style') node.setAttribute('style', value);
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 401 || response.status === 403) {
      logout('The token was refused.');
      throw new Error('refused');
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || `HTTP ${response.status}`);
    }
    return response;
  }

  function showError(id, message) {
    const node = $(id);
    node.textContent = message;
    node.hidden = message === '';
  }

  function logout(message = '') {
    sessionStorage.removeItem(TOKEN_KEY);
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    showError('login-error', message);
  }

  async function login(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api('dashboard/data/search?q=');
    } catch (error) {
      if (error.message !== 'refused') logout(error.message);
      return;
    }
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    showError('login-error', '');
    await runSearch('');
  }

  async function runSearch(query) {
    showError('app-error', '');
    let hits;
    try {
      hits = (await (await api(`dashboard/data/search?q=${encodeURIComponent(query)}`)).json()).hits;
    } catch (error) {
      if (error.message !== 'refused') showError('app-error', error.message);
      return;
    }
    const list = $('hits');
    list.replaceChildren(
      ...hits.map((hit) => {
        const button = el('button', { type: 'button', 'data-type': hit.type, 'data-name': hit.name }, el('span', { class: 'type', text: hit.type }), hit.name);
        button.addEventListener('click', () => void open(hit.type, hit.name));
        return el('li', {}, button);
      }),
    );
    if (hits.length === 0) list.replaceChildren(el('li', { text: 'No user or org matches.' }));
  }

  async function open(type, name) {
    showError('app-error', '');
    let data;
    try {
      data = await (await api(`dashboard/data/view?${type}=${encodeURIComponent(name)}`)).json();
    } catch (error) {
      if (error.message !== 'refused') showError('app-error', error.message);
      return;
    }
    current = data;
    render(data);
  }

  function projectionText(service) {
    const { projection } = service;
    const name = KIND_NAMES[service.kind].toLowerCase();
    switch (projection.status) {
      case 'runs_out': return `At this pace the ${name} quota runs out on ${projection.date} (${number(projection.dailyRate)} a day; resets ${day(service.resetsAt)}).`;
      case 'exhausted': return `The ${name} quota is used up; it resets on ${day(service.resetsAt)}.`;
      case 'lasts': return `At this pace (${number(projection.dailyRate)} a day) the ${name} quota lasts until the reset on ${day(service.resetsAt)}.`;
      case 'idle': return `No ${name} use this cycle yet.`;
      case 'soft_limit': return `Soft limit: use past the quota is allowed and billed (${number(projection.dailyRate)} a day).`;
      default: return `No ${name} quota: every request is refused.`;
    }
  }

  function serviceCard(service) {
    const ratio = service.quota === 0 ? (service.used > 0 ? 1 : 0) : service.used / service.quota;
    const level = ratio >= 1 ? 'full' : ratio >= 0.8 ? 'high' : '';
    const figure = (label, field, value) => [el('dt', { text: label }), el('dd', { 'data-field': field, text: value })];
    const chart = el('div', { class: 'chart' });
    const card = el(
      'article',
      { class: 'service', 'data-kind': service.kind },
      el('header', {}, el('h3', { text: `${KIND_NAMES[service.kind]} · ${service.provider}` }), el('span', { class: service.softLimit ? 'badge soft' : 'badge', 'data-field': 'limit', text: service.softLimit ? 'soft limit' : 'hard limit' })),
      el('div', { class: `bar ${level}`, role: 'img', 'aria-label': `${number(service.used)} of ${number(service.quota)} used` }, el('span', { style: `width:${Math.min(100, ratio * 100).toFixed(1)}%` })),
      el(
        'dl',
        { class: 'figures' },
        ...figure('Quota', 'quota', number(service.quota)),
        ...figure('Used', 'used', number(service.used)),
        ...figure('Remaining', 'remaining', number(service.remaining)),
        ...figure('Service type', 'serviceType', service.serviceType),
        ...figure('Cycle start', 'cycleStart', day(service.cycleStart)),
        ...figure('Resets', 'resetsAt', day(service.resetsAt)),
      ),
      el('p', { class: `projection ${service.projection.status}`, 'data-field': 'projection', text: projectionText(service) }),
      chart,
    );
    return { card, chart };
  }

  function drawChart(target, service) {
    const xs = service.daily.map((point) => Date.parse(`${point.date}T00:00:00Z`) / 1000);
    const daily = service.daily.map((point) => point.used);
    let sum = 0;
    const cumulative = daily.map((value) => (sum += value));
    const width = Math.max(260, target.clientWidth || 320);
    const halfDay = 43_200;
    const chart = new uPlot(
      {
        width,
        height: 170,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        legend: { show: true, live: false },
        // Half a day of room on each side, so the first and last bars are drawn whole.
        scales: { x: { time: true, range: (_u, min, max) => [min - halfDay, max + halfDay] }, y: { range: (_u, _min, max) => [0, Math.max(max, service.quota, 1)] } },
        axes: [{ space: 46, values: (_u, splits) => splits.map((ts) => new Date(ts * 1000).toISOString().slice(5, 10)) }, { size: 48 }],
        series: [
          { label: 'day' },
          { label: 'per day', stroke: '#2f5fd0', fill: 'rgba(47,95,208,0.35)', paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
          { label: 'cycle total', stroke: '#ef6c00', width: 2, points: { show: false } },
          { label: 'quota', stroke: '#c62828', dash: [6, 4], width: 1, points: { show: false } },
        ],
      },
      [xs, daily, cumulative, xs.map(() => service.quota)],
      target,
    );
    charts.push(chart);
  }

  function render(data) {
    for (const chart of charts.splice(0)) chart.destroy();
    $('view').hidden = false;
    $('view-title').textContent = `${data.type === 'user' ? 'User' : 'Org'} ${data.name}`;
    $('view-title').dataset.name = data.name;
    $('view-meta').textContent =
      data.type === 'user' && data.org !== null
        ? `Member of ${data.org}: quotas, use and projections are the org's pool. Today (UTC): ${data.today}.`
        : `Today (UTC): ${data.today}.`;
    const cards = data.services.map(serviceCard);
    $('services').replaceChildren(...cards.map(({ card }) => card));
    cards.forEach(({ chart }, index) => drawChart(chart, data.services[index]));

    const credits = $('credits');
    credits.hidden = data.credits === null;
    if (data.credits !== null) {
      const c = data.credits;
      const rows = 'username' in c
        ? [['Assigned', c.assignedCredits === -1 ? 'no limit' : number(c.assignedCredits), 'assigned'], ['Spent', number(c.spentCredits), 'spent'], ['Available', number(c.availableCredits), 'available']]
        : [['Org balance', number(c.credits), 'balance'], ['Default allocation', c.defaultLimit === -1 ? 'none' : number(c.defaultLimit), 'defaultLimit']];
      credits.replaceChildren(
        el('h2', { text: 'Credits (budgeting on)' }),
        el('dl', { class: 'figures' }, ...rows.flatMap(([label, value, field]) => [el('dt', { text: label }), el('dd', { 'data-credit': field, text: value })])),
      );
    }

    const members = $('members');
    members.hidden = data.members.length === 0;
    const kinds = data.services.map((service) => service.kind);
    members.replaceChildren(
      el('h2', { text: `Members of ${data.org} and their share of the pool` }),
      el(
        'table',
        {},
        el('thead', {}, el('tr', {}, el('th', { text: 'Member' }), ...kinds.map((kind) => el('th', { text: KIND_NAMES[kind] })))),
        el(
          'tbody',
          {},
          ...data.members.map((member) =>
            el(
              'tr',
              { 'data-member': member.username },
              el('td', { text: member.username }),
              ...kinds.map((kind) =>
                el(
                  'td',
                  { 'data-kind': kind, 'data-used': String(member.used[kind]) },
                  `${number(member.used[kind])} (${(member.share[kind] * 100).toFixed(1)} %)`,
                  el('span', { class: 'share', style: `width:${Math.round(member.share[kind] * 60)}px` }),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function download(format) {
    if (current === null) return;
    const frame = $('report-frame').value;
    const status = $('report-status');
    status.textContent = 'Preparing…';
    try {
      const response = await api(`reports?${current.type}=${encodeURIComponent(current.name)}&frame=${frame}&format=${format}`);
      const blob = await response.blob();
      const link = el('a', { href: URL.createObjectURL(blob), download: `tollgate-${current.type}-${current.name}-${frame}.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      status.textContent = `${(response.headers.get('X-Report-From') || '')} to ${(response.headers.get('X-Report-To') || '')} downloaded`;
    } catch (error) {
      status.textContent = error.message === 'refused' ? '' : `Failed: ${error.message}`;
    }
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void login($('token').value.trim());
    $('token').value = '';
  });
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void runSearch($('query').value.trim());
  });
  $('logout').addEventListener('click', () => logout());
  $('download-csv').addEventListener('click', () => void download('csv'));
  $('download-json').addEventListener('click', () => void download('json'));

  if (sessionStorage.getItem(TOKEN_KEY)) void login(sessionStorage.getItem(TOKEN_KEY));
})();
