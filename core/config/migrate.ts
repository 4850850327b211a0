/**
 * Keys of earlier vaelab versions. A run directory keeps the config it was trained with, so
 * `eval`, `sample` and `--resume` read old names through `migrateSavedConfig`; an experiment file
 * that uses one is refused with the new name (RENAMED_KEYS, used by the config's messages).
 */

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Old dotted key -> what replaced it, for the message an experiment file gets. */
export const RENAMED_KEYS: Readonly<Record<string, string>> = Object.freeze({
  'data.conditionOnLabels': 'data.condition (conditionOnLabels: true is condition: { use: labels })',
});

function migrateOne(cfg: Raw): void {
  const data = cfg.data;
  if (isObject(data) && 'conditionOnLabels' in data) {
    const on = data.conditionOnLabels === true;
    delete data.conditionOnLabels;
    if (!('condition' in data)) data.condition = { use: on ? 'labels' : 'none' };
  }
}

/** A saved config (a run directory's config.json, stages included) in today's keys; changes `raw` in place. */
export function migrateSavedConfig<T extends Raw>(raw: T): T {
  migrateOne(raw);
  if (Array.isArray(raw.stages)) for (const s of raw.stages) if (isObject(s)) migrateOne(s);
  return raw;
}
