/** The run's activities as the journal records them (Chaos Toolkit's model): type, name, start, end, status, output. */

export type ActivityType = 'probe' | 'action' | 'rollback';

export interface Activity {
  type: ActivityType;
  name: string;
  start: string;
  end: string;
  durationMs: number;
  status: 'succeeded' | 'failed';
  output?: unknown;
  error?: string;
}

export class Activities {
  readonly list: Activity[] = [];

  /** Runs fn as one activity; a failure is recorded and rethrown. */
  async run<T>(type: ActivityType, name: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    const record = (status: Activity['status'], extra: Partial<Activity>) => {
      this.list.push({ type, name, start: new Date(start).toISOString(), end: new Date().toISOString(), durationMs: Date.now() - start, status, ...extra });
    };
    try {
      const output = await fn();
      record('succeeded', { output });
      return output;
    } catch (err) {
      record('failed', { error: (err as Error).message });
      throw err;
    }
  }
}
