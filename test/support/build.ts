/** vitest global setup: compiles src/ to dist/ once, for the tests that run the built exporter as a process. */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
