import type { Config } from '../config/types.js';

/**
 * A part of the daemon with a lifecycle. The App starts components in the
 * order they were added and stops them in reverse; after a successful
 * reload each gets the new config. Lower modules implement this without
 * knowing the App that runs them.
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Called after a successful reload with the new config. */
  reconfigure?(config: Config): Promise<void>;
}
