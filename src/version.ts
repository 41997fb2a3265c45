/** Version and revision of this build, shown in --version, build info and the User-Agent. */
import { readFileSync } from 'node:fs';

function readPackageVersion(): string {
  // package.json sits one folder above both src/ and dist/, and the image copies it too.
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

export const VERSION = readPackageVersion();

/** Source revision, set at image build time through NGROK_SESSIONS_EXPORTER_REVISION. */
export const REVISION = process.env.NGROK_SESSIONS_EXPORTER_REVISION ?? 'unknown';

/** User-Agent in the `name/version/runtime` form of ngrok's official clients. */
export const USER_AGENT = `ngrok-sessions-exporter/${VERSION}/node-${process.version}`;
