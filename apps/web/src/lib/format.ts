/** Number, byte, time and percentage formatting shared by both pages. */
import type { DashboardData } from '@swarmgrad/protocol';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatInt(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : integer.format(value);
}

/** Three significant digits, plain notation between 1e-3 and 1e5. */
export function formatNumber(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(Math.max(0, digits - 1));
  return Number(value.toPrecision(digits)).toString();
}

export function formatPercent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${(value * 100).toFixed(digits)}%`;
}

const byteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  let v = Math.max(0, value);
  let unit = 0;
  while (v >= 1024 && unit < byteUnits.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${unit === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${byteUnits[unit]}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

/** Wall-clock time of day, 24 h, seconds. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
}

/** Bits per parameter on the wire for a codec (1-bit: one sign bit + one fp32 scale per block). */
export function bitsPerParameter(codec: { name: string; blockSize: number }): number {
  switch (codec.name) {
    case 'one-bit':
    case 'stochastic-one-bit':
      return 1 + 32 / Math.max(1, codec.blockSize);
    case 'fp16':
      return 16;
    default:
      return 32;
  }
}

/** "mlp-784-128-10" or "custom (K classes)". */
/**
 * A job's model in a few words: the preset's name, or for a TF.js topology its name and its
 * layers by kind ("mlp-784-1280-10 (TF.js: Dense ×2; 10 classes)").
 */
export function describeModel(
  model: { preset: string } | { classes: number; topology?: Record<string, unknown> },
): string {
  if ('preset' in model) return model.preset;
  const { name, layers } = topologySummary(model.topology);
  const kinds: string[] = [];
  for (const kind of layers) {
    const seen = kinds.findIndex((k) => k.split(' ')[0] === kind);
    if (seen < 0) kinds.push(kind);
    else {
      const count = Number(/×(\d+)$/.exec(kinds[seen]!)?.[1] ?? 1);
      kinds[seen] = `${kind} ×${count + 1}`;
    }
  }
  const body = kinds.length > 0 ? `TF.js: ${kinds.join(', ')}; ` : '';
  return `${name ?? 'custom TF.js model'} (${body}${model.classes} classes)`;
}

/** The topology's model name and its layers' class names, in order (Keras-style JSON). */
function topologySummary(topology: Record<string, unknown> | undefined): {
  name: string | undefined;
  layers: string[];
} {
  const root = (topology?.['model_config'] ?? topology) as Record<string, unknown> | undefined;
  const config = root?.['config'] as Record<string, unknown> | undefined;
  const name = typeof config?.['name'] === 'string' ? config['name'] : undefined;
  const list = Array.isArray(config?.['layers']) ? (config['layers'] as unknown[]) : [];
  const layers = list
    .map((layer) => (layer as { class_name?: unknown } | null)?.class_name)
    .filter((kind): kind is string => typeof kind === 'string' && /^[A-Za-z0-9]+$/.test(kind));
  return { name, layers };
}

/**
 * The job's data in one line: the preset and its split, or — for a dataset pack — its name,
 * split and shape as the coordinator loaded them (`data` of the status), then where it is.
 */
export function describeDataset(
  dataset: { preset: 'mnist'; train: number; heldOut: number } | { manifestUrl: string },
  data?: Pick<DashboardData, 'name' | 'train' | 'heldOut' | 'features' | 'classes'>,
): string {
  if ('preset' in dataset)
    return `MNIST · ${formatInt(dataset.train)} train / ${formatInt(dataset.heldOut)} held-out`;
  if (data === undefined) return dataset.manifestUrl;
  return (
    `${data.name} · ${formatInt(data.train)} train / ${formatInt(data.heldOut)} held-out · ` +
    `${formatInt(data.features)} features, ${formatInt(data.classes)} classes (${dataset.manifestUrl})`
  );
}
