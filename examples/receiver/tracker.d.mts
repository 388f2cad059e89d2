/** Types of tracker.mjs, for TypeScript pipelines and mailgate's own test. */
export declare function titleOf(subject: unknown): string;

export type TrackerAction =
  | { action: 'ignore'; reason: string }
  | { action: 'skip'; reason: 'auto_reply' | 'bounce' | 'bulk'; bounce: unknown; thread: string | null; from: string | null; subject: string }
  | { action: 'comment'; issue: string; body: string; thread: string | null; from: string | null }
  | { action: 'create'; issue: string; title: string; body: string; thread: string | null; from: string | null };

export declare function trackerActionOf(payload: unknown, threads: Map<string, string>, newIssueKey: () => string): TrackerAction;
