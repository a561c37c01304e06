// The fixed prompt of the benchmarks on random checkpoints: bos, then ids from a seeded LCG
// below `vocabLimit` (so every run and every engine sees the same ids).
export function lcgPrompt(bos, vocabLimit, length) {
  const ids = [bos];
  let state = 12345;
  while (ids.length < length) {
    state = (state * 1103515245 + 12345) % 2147483648;
    ids.push(state % vocabLimit);
  }
  return ids;
}
