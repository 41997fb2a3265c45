/** The HTML landing page at `/`, in the style of the Prometheus exporters' pages. */
import type { RefresherState } from '../refresher.js';

export interface LandingPageInput {
  version: string;
  telemetryPath: string;
  state: RefresherState;
  now: number;
}

/** Renders the landing page; it shows error codes, never error messages, so nothing from the API is echoed. */
export function renderLandingPage({ version, telemetryPath, state, now }: LandingPageInput): string {
  const rows: [string, string][] = [
    ['Version', version],
    ['Last refresh', describeSnapshot(state, now)],
    ['Refresh interval', `${Math.round(state.effectiveIntervalMs / 1000)} s`],
    ['Refresh running', state.refreshing ? 'yes' : 'no'],
  ];
  if (state.lastFailure !== undefined && state.consecutiveFailures > 0) {
    const count = state.consecutiveFailures === 1 ? '1 failed refresh' : `${state.consecutiveFailures} consecutive failed refreshes`;
    rows.push(['Failing', `${count}, the last one ${secondsAgo(state.lastFailure.atMs, now)} (${state.lastFailure.code}, reason ${state.lastFailure.reason}). See the exporter log.`]);
  }

  const table = rows.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('\n');
  const path = escapeHtml(telemetryPath);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ngrok sessions exporter</title>
<style>body{font-family:sans-serif;margin:2em;max-width:50em}th{text-align:left;padding-right:1em}</style>
</head>
<body>
<h1>ngrok sessions exporter</h1>
<p>Prometheus exporter for the application sessions of an ngrok account.</p>
<ul>
<li><a href="${path}">Metrics</a></li>
<li><a href="/-/healthy">Liveness</a> and <a href="/-/ready">readiness</a></li>
</ul>
<table>
${table}
</table>
</body>
</html>
`;
}

function describeSnapshot(state: RefresherState, now: number): string {
  if (state.snapshot === undefined) return 'no successful refresh yet';
  const { snapshot } = state;
  return `${secondsAgo(snapshot.completedAtMs, now)}: ${snapshot.active} active sessions of ${snapshot.listed} listed, ${snapshot.pages} pages`;
}

function secondsAgo(atMs: number, now: number): string {
  return `${Math.max(0, Math.round((now - atMs) / 1000))} s ago`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
