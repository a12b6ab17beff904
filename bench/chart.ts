/**
 * A hand-written SVG bar chart of the small-GET scenario: throughput (left) and p99 latency
 * (right), one group of bars per connection count, one bar per peer. No dependencies; opens
 * in any browser and renders on GitHub.
 */
import type { SmallData } from './scenarios/small';

const WIDTH = 960;
const HEIGHT = 420;
const PANEL_TOP = 60;
const PANEL_BOTTOM = 360;
const COLORS = ['#6b7280', '#f59e0b', '#2563eb', '#16a34a', '#dc2626', '#9333ea'];

interface Panel {
  title: string;
  x: number;
  width: number;
  value: (peer: string, concurrency: number) => number | undefined;
  format: (v: number) => string;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function compact(v: number): string {
  if (v >= 10_000) return `${Math.round(v / 1000)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return v >= 10 ? String(Math.round(v)) : v.toFixed(2);
}

function drawPanel(panel: Panel, peers: string[], concurrencies: number[]): string[] {
  const out: string[] = [];
  const values = concurrencies.flatMap((c) => peers.map((p) => panel.value(p, c) ?? 0));
  const max = Math.max(...values, 1e-9);
  const height = PANEL_BOTTOM - PANEL_TOP;
  const groupWidth = panel.width / concurrencies.length;
  const barWidth = Math.min(48, Math.max(4, (groupWidth - 20) / peers.length));
  out.push(`<text x="${panel.x + panel.width / 2}" y="${PANEL_TOP - 20}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
  out.push(`<line x1="${panel.x}" y1="${PANEL_BOTTOM}" x2="${panel.x + panel.width}" y2="${PANEL_BOTTOM}" stroke="#999"/>`);
  concurrencies.forEach((c, gi) => {
    const gx = panel.x + gi * groupWidth + (groupWidth - barWidth * peers.length) / 2;
    peers.forEach((peer, pi) => {
      const v = panel.value(peer, c);
      if (v === undefined || !Number.isFinite(v)) return;
      const h = (v / max) * height;
      const x = gx + pi * barWidth;
      out.push(`<rect x="${x.toFixed(1)}" y="${(PANEL_BOTTOM - h).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[pi % COLORS.length]}"><title>${escapeXml(`${peer}, ${c} conns: ${panel.format(v)}`)}</title></rect>`);
      out.push(`<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(PANEL_BOTTOM - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${escapeXml(compact(v))}</text>`);
    });
    out.push(`<text x="${gx + (barWidth * peers.length) / 2}" y="${PANEL_BOTTOM + 16}" text-anchor="middle" font-size="11">${c} conns</text>`);
  });
  return out;
}

function legend(peers: string[]): string[] {
  return peers.map((peer, i) => {
    const x = 40 + i * 170;
    return `<rect x="${x}" y="${HEIGHT - 30}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 18}" y="${HEIGHT - 20}" font-size="12">${escapeXml(peer)}</text>`;
  });
}

export function renderChart(data: SmallData, caption: string): string {
  const peers = [...new Set(data.rows.map((r) => r.peer))];
  const row = (peer: string, c: number) => data.rows.find((r) => r.peer === peer && r.concurrency === c);
  const panels: Panel[] = [
    { title: 'Throughput (req/s, higher is better)', x: 30, width: 430, value: (p, c) => row(p, c)?.rps, format: (v) => `${Math.round(v)} req/s` },
    { title: 'p99 latency (ms, lower is better)', x: 500, width: 430, value: (p, c) => row(p, c)?.p99Ms, format: (v) => `${v} ms` },
  ];
  const body = [
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(caption)}</text>`,
    ...panels.flatMap((p) => drawPanel(p, peers, data.concurrencies)),
    ...legend(peers),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">\n${body.join('\n')}\n</svg>\n`;
}
