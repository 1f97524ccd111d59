import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadDirectory, type LoadedDirectory } from './load-directory';
import type { DirectoryIndex } from './directory-index';

export interface DirectoryHooks {
  loaded(loaded: LoadedDirectory, trigger: string): void;
  failed(error: Error, trigger: string): void;
}

/**
 * Holds the directory in force. A reload parses, validates and compiles the whole new
 * file first, then swaps one reference; a broken file leaves the old directory in force
 * (vector's pipeline model). Reloads on file change and on demand (SIGHUP).
 */
export class DirectoryStore {
  private index: DirectoryIndex | null = null;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string,
    private readonly knownInteractions: ReadonlySet<string>,
    private readonly hooks: DirectoryHooks,
  ) {}

  get current(): DirectoryIndex | null {
    return this.index;
  }

  /** Start-up load: a bad file is fatal here (DirectoryError), unlike a reload. */
  loadInitial(): LoadedDirectory {
    const loaded = loadDirectory(this.file, this.knownInteractions);
    this.index = loaded.index;
    this.hooks.loaded(loaded, 'start-up');
    return loaded;
  }

  /** Returns true when the new file is in force. */
  reload(trigger: string): boolean {
    try {
      const loaded = loadDirectory(this.file, this.knownInteractions);
      this.index = loaded.index;
      this.hooks.loaded(loaded, trigger);
      return true;
    } catch (err) {
      this.hooks.failed(err as Error, trigger);
      return false;
    }
  }

  /**
   * Watches the file's folder, not the file, so that editors' and config managers'
   * write-then-rename replacements are seen too. Events are debounced.
   */
  watch(debounceMs = 150): void {
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = null;
        this.reload('file change');
      }, debounceMs);
    });
    this.watcher.unref();
  }

  close(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = null;
  }
}
