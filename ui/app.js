// Switchboard's web UI: Preact components written with htm (no build step), data from the
// registry's /v1/switchboard/ui/ endpoints, refreshed when the Server-Sent Events stream says
// something changed. Three pages by hash: #/ services, #/service/<name>, #/cluster.
import { h, render } from './vendor/preact.js';
import { useCallback, useEffect, useRef, useState } from './vendor/hooks.js';
import htm from './vendor/htm.js';

const html = htm.bind(h);
const TOKEN_KEY = 'switchboard-token';

function token() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

async function api(path, options = {}) {
  const headers = token() ? { 'X-Consul-Token': token() } : {};
  const res = await fetch(path, { ...options, headers });
  const text = await res.text();
  const body = text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : undefined;
  if (!res.ok) throw new Error((body && body.message) || `${res.status} ${res.statusText}`);
  return body;
}

/** A change counter bumped by the stream: pages refetch when it moves. */
function useChanges() {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let source;
    const open = () => {
      const query = token() ? `?token=${encodeURIComponent(token())}` : '';
      source = new EventSource(`/v1/switchboard/ui/stream${query}`);
      source.addEventListener('change', () => setVersion((v) => v + 1));
    };
    open();
    const retoken = () => { source.close(); open(); setVersion((v) => v + 1); };
    window.addEventListener('switchboard-token', retoken);
    return () => { source.close(); window.removeEventListener('switchboard-token', retoken); };
  }, []);
  return version;
}

function useData(path, version) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  useEffect(() => {
    let live = true;
    api(path).then((data) => live && setState({ data, error: undefined }), (error) => live && setState((s) => ({ data: s.data, error })));
    return () => { live = false; };
  }, [path, version]);
  return state;
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Badge({ kind, children }) {
  return html`<span class="badge ${kind}" data-state=${kind}>${children}</span>`;
}

function ago(ms) {
  if (ms < 1000) return 'just now';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function fmt(n, digits = 1) {
  return n === undefined || n === null ? '–' : Number(n).toFixed(digits);
}

// ---- services ---------------------------------------------------------------------------

function Services({ version }) {
  const { data, error } = useData('/v1/switchboard/ui/services', version);
  const [search, setSearch] = useState('');
  const [state, setState] = useState('all');
  if (!data) return html`<p class="loading">${error ? html`<span class="error">${error.message}</span>` : 'Loading…'}</p>`;
  const shown = data.filter((s) => (s.name.includes(search) || s.tags.some((t) => t.includes(search))) && (state === 'all' || s.counts[state] > 0));
  return html`
    <div class="toolbar">
      <input id="search" placeholder="Search services or tags" value=${search} onInput=${(e) => setSearch(e.target.value)} />
      <select id="state-filter" value=${state} onChange=${(e) => setState(e.target.value)}>
        ${['all', 'passing', 'warning', 'critical', 'ejected', 'draining', 'maintenance'].map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <span class="muted small">${shown.length} of ${data.length} services</span>
    </div>
    ${error && html`<p class="error">${error.message}</p>`}
    <table id="services">
      <thead><tr><th>Service</th><th>Instances</th><th>State</th><th>Tags</th><th>Routes</th></tr></thead>
      <tbody>
        ${shown.map((s) => html`
          <tr class="row" data-service=${s.name} onClick=${() => (location.hash = `#/service/${s.name}`)}>
            <td><a href=${`#/service/${s.name}`}>${s.name}</a></td>
            <td>${s.instances}</td>
            <td>${Object.entries(s.counts).filter(([, n]) => n > 0).map(([k, n]) => html`<${Badge} kind=${k}>${n} ${k}<//>`)}</td>
            <td>${s.tags.map((t) => html`<span class="tag">${t}</span>`)}</td>
            <td class="small muted">${s.routes.join('  ')}</td>
          </tr>`)}
      </tbody>
    </table>`;
}

// ---- one service ------------------------------------------------------------------------

function Sparkline({ points }) {
  const ref = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!ref.current || !window.uPlot) return;
    const xs = points.map((p) => p.at / 1000);
    const data = [xs, points.map((p) => p.rps), points.map((p) => p.p99)];
    if (!plot.current) {
      plot.current = new window.uPlot({
        width: 320, height: 70, legend: { show: false }, cursor: { show: false },
        axes: [{ show: false }, { show: false }, { show: false, scale: 'ms' }],
        series: [{}, { stroke: '#2f6fdb', fill: 'rgba(47,111,219,.12)', label: 'req/s' }, { stroke: '#d68a00', scale: 'ms', label: 'p99 ms' }],
      }, data, ref.current);
    } else {
      plot.current.setData(data);
    }
  }, [points]);
  useEffect(() => () => plot.current && plot.current.destroy(), []);
  return html`<div class="spark" ref=${ref} title="requests/s (blue) and p99 ms (orange), last two minutes"></div>`;
}

function explainClass(text) {
  if (/^(critical|ejected|maintenance|drained|failing)/.test(text)) return 'explain bad';
  if (/^(warning|slow|slower|service in panic)/.test(text)) return 'explain warn';
  return 'explain';
}

function Instance({ instance, canWrite, onAction }) {
  const i = instance;
  const act = (what, path, method = 'PUT') => onAction(what, () => api(path, { method }));
  const maintenancePath = `/v1/agent/service/maintenance/${encodeURIComponent(i.id)}?enable=${i.maintenance === null}&reason=${encodeURIComponent('from the web UI')}`;
  const fresh = i.proxies.filter((p) => !p.stale);
  return html`
    <div class="card instance" data-instance=${i.id}>
      <h3>
        ${i.id} <${Badge} kind=${i.health}>${i.health}<//>
        ${fresh.some((p) => p.ejected) && html`<${Badge} kind="ejected">ejected<//>`}
        ${i.drained && html`<${Badge} kind="draining">drained<//>`}
        ${i.maintenance !== null && html`<${Badge} kind="maintenance">maintenance<//>`}
        ${canWrite && html`<span class="actions">
          <button class="act-drain" onClick=${() => act('drain', `/v1/switchboard/drain/${encodeURIComponent(i.id)}?enable=${!i.drained}`)}>${i.drained ? 'Undrain' : 'Drain'}</button>
          <button class="act-maintenance" onClick=${() => act('maintenance', maintenancePath)}>${i.maintenance === null ? 'Maintenance' : 'End maintenance'}</button>
          <button class="danger act-deregister" onClick=${() => confirm(`Deregister ${i.id}?`) && act('deregister', `/v1/agent/service/deregister/${encodeURIComponent(i.id)}`)}>Deregister</button>
        </span>`}
      </h3>
      <div class="muted small">${i.address}:${i.port} · weights ${i.weights.passing}/${i.weights.warning} ${i.tags.map((t) => html`<span class="tag">${t}</span>`)}</div>
      <div class=${explainClass(i.explain)} data-explain>${i.explain}</div>
      <div class="grid">
        <div>
          <table class="checks">
            <thead><tr><th>Check</th><th>Status</th><th>Output</th><th>Since</th></tr></thead>
            <tbody>${i.checks.map((c) => html`<tr data-check=${c.id}><td>${c.name}<div class="muted small">${c.type}</div></td><td><${Badge} kind=${c.status}>${c.status}<//></td><td class="small">${c.notes || c.output}</td><td class="small muted">${ago(Date.now() - c.since)}</td></tr>`)}</tbody>
          </table>
        </div>
        <div>${i.history.length > 1 ? html`<${Sparkline} points=${i.history} />` : html`<p class="muted small">No traffic in the last two minutes.</p>`}</div>
      </div>
      ${i.proxies.length > 0 && html`
        <table class="proxies small">
          <thead><tr><th>Proxy</th><th>req/s</th><th>errors</th><th>p50</th><th>p99</th><th>in flight</th><th>weight</th><th>state</th></tr></thead>
          <tbody>${i.proxies.map((p) => html`
            <tr>
              <td>${p.proxy} ${p.stale && html`<${Badge} kind="stale">stale<//>`}</td>
              <td>${fmt(p.rps)}</td><td>${p.errorRate === undefined ? '–' : `${fmt(p.errorRate * 100)} %`}</td>
              <td>${fmt(p.p50, 2)}</td><td>${fmt(p.p99, 2)}</td><td>${p.inFlight ?? 0}</td><td>${p.weight === undefined ? '–' : fmt(p.weight, 2)}</td>
              <td>${p.ejected ? `ejected (${p.ejected.reason}, ${Math.ceil(p.ejected.remainingMs / 1000)} s left)` : p.probeFailing ? 'probes failing' : p.warm ? `slow start ${Math.round(p.warm * 100)} %` : p.latencyFactor ? `latency ${fmt(p.latencyFactor * 100)} %` : p.weight === undefined ? 'idle' : 'serving'}</td>
            </tr>`)}</tbody>
        </table>`}
    </div>`;
}

function Service({ name, version }) {
  const { data, error } = useData(`/v1/switchboard/ui/service/${encodeURIComponent(name)}`, version);
  const [message, setMessage] = useState(undefined);
  const onAction = useCallback((what, run) => {
    run().then(() => setMessage(`${what}: done`), (err) => setMessage(`${what} failed: ${err.message}`));
  }, []);
  if (!data) return html`<p class="loading">${error ? html`<span class="error">${error.message}</span>` : 'Loading…'}</p>`;
  return html`
    <p><a href="#/">← Services</a></p>
    <h2 id="service-name">${data.name}</h2>
    <p class="muted small">Routes: ${data.routes.join(', ')} · ${data.instances.length} instances · ${data.proxies.length} ${data.proxies.length === 1 ? "proxy" : "proxies"} reporting
      ${data.proxies.some((p) => p.panic && !p.stale) && html` · <${Badge} kind="critical">panic mode<//>`}
      ${!data.canWrite && html` · read-only (this token may not write to ${data.name})`}</p>
    ${message && html`<p class="muted" id="action-message">${message}</p>`}
    ${error && html`<p class="error">${error.message}</p>`}
    ${data.instances.map((i) => html`<${Instance} key=${i.id} instance=${i} canWrite=${data.canWrite} onAction=${onAction} />`)}`;
}

// ---- cluster ----------------------------------------------------------------------------

function Cluster({ version }) {
  const { data, error } = useData('/v1/switchboard/ui/cluster', version);
  if (!data) return html`<p class="loading">${error ? html`<span class="error">${error.message}</span>` : 'Loading…'}</p>`;
  return html`
    <div class="grid">
      <div class="card">
        <h3>Registries</h3>
        ${data.registries.map((r) => html`<div>${r.address} ${r.leader && html`<${Badge} kind="passing">leader<//>`}</div>`)}
        <p class="small muted" id="store">Store (${data.store.kind}) ${data.store.healthy ? 'healthy' : html`<b class="error">unreachable</b>`} · revision ${data.store.revision} · catalog ${data.store.catalogRevision}</p>
        <p class="small muted" id="bus">Bus: ${data.bus.status === 'local' ? 'in-process' : html`Redis ${data.bus.status === 'connected' ? 'connected' : html`<b class="error">${data.bus.status}</b>`}`}</p>
      </div>
      <div class="card">
        <h3>Proxies</h3>
        <table id="proxies" class="small">
          <thead><tr><th>Proxy</th><th>Catalog</th><th>Last resync</th><th>Last report</th></tr></thead>
          <tbody>${data.proxies.map((p) => html`<tr><td>${p.proxy} ${p.stale && html`<${Badge} kind="stale">stale<//>`}${p.workers > 1 ? html` <span class="muted">(${p.workers} workers)</span>` : ''}</td>
            <td>rev ${p.rev}${p.behind > 0 ? html` <${Badge} kind="warning">${p.behind} behind<//>` : ''}</td>
            <td>${p.lastResync ? `${p.lastResync.reason}, ${ago(Date.now() - p.lastResync.at)}` : '–'}</td><td>${ago(p.lastSeenMs)}</td></tr>`)}</tbody>
        </table>
      </div>
    </div>
    ${error && html`<p class="error">${error.message}</p>`}
    <div class="card">
      <h3>Timeline</h3>
      <table class="events small"><tbody>${[...data.events].reverse().map((e) => html`<tr data-kind=${e.kind}><td>${new Date(e.at).toLocaleTimeString()}</td><td>${e.kind}</td><td>${e.detail}</td></tr>`)}</tbody></table>
    </div>`;
}

// ---- shell ------------------------------------------------------------------------------

function TokenField() {
  const [value, setValue] = useState(token());
  const save = () => { localStorage.setItem(TOKEN_KEY, value); window.dispatchEvent(new Event('switchboard-token')); };
  return html`<label class="token">ACL token <input type="password" value=${value} onInput=${(e) => setValue(e.target.value)} onChange=${save} /></label>`;
}

function App() {
  const route = useRoute();
  const version = useChanges();
  const service = /^#\/service\/(.+)$/.exec(route);
  const page = service ? html`<${Service} name=${decodeURIComponent(service[1])} version=${version} />` : route === '#/cluster' ? html`<${Cluster} version=${version} />` : html`<${Services} version=${version} />`;
  return html`
    <header>
      <h1>Switchboard</h1>
      <nav><a href="#/" class=${route === '#/' || service ? 'active' : ''}>Services</a><a href="#/cluster" class=${route === '#/cluster' ? 'active' : ''}>Cluster</a></nav>
      <${TokenField} />
    </header>
    <main>${page}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
