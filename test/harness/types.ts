export interface HarnessInfo {
  oauthUrl: string;
  imapPort: number;
  pop3Port: number;
  submissionPort: number;
  dovecotConfig: string;
  dovecotLog: string;
  mailRoot: string;
  relaySinkControlUrl: string;
  relaySinkPort: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    harness: HarnessInfo;
    /** The run's temporary root (global-setup.ts); unset in projects without the global setup. */
    testTmpRoot?: string;
  }
}
