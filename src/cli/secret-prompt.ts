/**
 * Reads a secret typed on a terminal without echoing it: the terminal is put
 * in raw mode, characters are collected until Enter, backspace edits, and
 * Ctrl-C or Ctrl-D without input cancels. Nothing typed is written back.
 */
export interface TtyInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export class PromptCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'PromptCancelled';
  }
}

export function promptHidden(question: string, input: TtyInput, output: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolvePrompt, reject) => {
    output.write(question);
    input.setRawMode?.(true);
    input.resume();
    let value = '';
    const finish = (err: Error | null) => {
      input.removeListener('data', onData);
      input.setRawMode?.(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolvePrompt(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) return finish(new PromptCancelled());
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
  });
}
