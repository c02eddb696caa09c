/** Sizes, durations and counts as the tool's messages, progress and summaries write them. */

/** `1.5 GiB`, `200 MiB`: sizes in messages. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `2m05s`, `41s` */
export function formatDuration(totalSeconds: number): string {
  if (!Number.isFinite(totalSeconds)) return '--';
  const rounded = Math.max(0, Math.round(totalSeconds));
  const minutes = Math.floor(rounded / 60);
  const secs = rounded % 60;
  if (minutes === 0) return `${secs}s`;
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return `${minutes}m${String(secs).padStart(2, '0')}s`;
  return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** `12,345`: a count as the progress and the summaries write it. */
export function count(value: number): string {
  return value.toLocaleString('en-US');
}
