// Retention lock connections this process holds open now, in a module of its
// own so that metrics can count them without loading the pruning code (the
// cluster primary imports metrics, and keeps its imports light).
export const retentionLockConnections = { open: 0 };
