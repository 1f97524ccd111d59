export { DataDirLock, DataDirInUseError, LOCK_FILE, type LockOwner } from './data-dir-lock';
export { workerDir, workerSpoolDir, WORKER_LOCK_FILE, WORKER_INDEX_ENV } from './worker-layout';
