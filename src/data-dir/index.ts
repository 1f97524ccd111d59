export { DataDirLock, DataDirInUseError, LOCK_FILE, type LockOwner } from './data-dir-lock';
