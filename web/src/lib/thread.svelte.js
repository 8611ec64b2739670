// The conversation on the Ask screen, kept while the learner visits other
// screens (and dropped at logout).
export const thread = $state({ id: null, turns: [] });

export function resetThread() {
  thread.id = null;
  thread.turns = [];
}
