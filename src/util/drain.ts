/**
 * Runs a generator of progress events to its end, dropping the events, and resolves with what it returns: how the
 * plain `convert`, `finalize` and `push` are made from their `…Iter` generators.
 */
export async function drain<R>(events: AsyncGenerator<unknown, R>): Promise<R> {
  for (;;) {
    const step = await events.next();
    if (step.done === true) return step.value;
  }
}
