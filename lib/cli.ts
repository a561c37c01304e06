/** Entry point of the `difflm` command (dist/cli.js); the program is in lib/cli/. */
import { reportError } from './cli/fail';
import { main } from './cli/main';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err);
  },
);
