// Handlers and the recovery handler run their TypeScript through the same tsx loader as the node.
export const TSX_EXEC_ARGV = ['--import', import.meta.resolve('tsx')];
