/** Polls `check` until it holds; throws after `timeoutMs`, naming `what`. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
