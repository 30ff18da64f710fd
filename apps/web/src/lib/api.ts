/**
 * The coordinator's HTTP API as the pages use it: status, the token check and control (both
 * with `Authorization: Bearer <token>`), and downloads. Same origin only.
 */
import type { ControlCommand, DashboardStatus } from '@swarmgrad/protocol';

export async function fetchStatus(signal?: AbortSignal): Promise<DashboardStatus> {
  const response = await fetch('/api/status', { cache: 'no-store', signal });
  if (!response.ok) throw new Error(`status: HTTP ${response.status}`);
  return (await response.json()) as DashboardStatus;
}

export type ControlResult =
  | { ok: true; phase: string; iteration: number }
  | { ok: false; status: number; code: string; message: string };

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.json()) as { code?: string; message?: string };
    return { code: body.code ?? 'internal', message: body.message ?? response.statusText };
  } catch {
    return { code: 'internal', message: response.statusText || `HTTP ${response.status}` };
  }
}

/** True when the coordinator accepts this admin token (changes nothing). */
export async function checkToken(token: string): Promise<boolean> {
  const response = await fetch('/api/control', {
    headers: { authorization: `Bearer ${token}` },
    cache: 'no-store',
  });
  return response.ok;
}

export async function sendControl(
  token: string | null,
  command: ControlCommand,
): Promise<ControlResult> {
  let response: Response;
  try {
    response = await fetch('/api/control', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(command),
    });
  } catch (error) {
    return { ok: false, status: 0, code: 'network', message: (error as Error).message };
  }
  if (!response.ok) return { ok: false, status: response.status, ...(await errorOf(response)) };
  const body = (await response.json()) as { phase: string; iteration: number };
  return { ok: true, phase: body.phase, iteration: body.iteration };
}

function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Saves the agreed model in TF.js layers format: `model.json` and the `weights.bin` it names,
 * fetched back to back so they belong together; `tf.loadLayersModel` reads them from any
 * folder holding both.
 */
export async function downloadModel(): Promise<{ iteration: number | null; bytes: number }> {
  const [json, weights] = await Promise.all([
    fetch('/api/model/model.json', { cache: 'no-store' }),
    fetch('/api/model/weights.bin', { cache: 'no-store' }),
  ]);
  if (!json.ok || !weights.ok) throw new Error('the coordinator did not serve the model');
  const modelText = await json.text();
  const weightBytes = await weights.arrayBuffer();
  const meta = JSON.parse(modelText) as { userDefinedMetadata?: { iteration?: number } };
  saveBlob(new Blob([modelText], { type: 'application/json' }), 'model.json');
  saveBlob(new Blob([weightBytes], { type: 'application/octet-stream' }), 'weights.bin');
  return {
    iteration: meta.userDefinedMetadata?.iteration ?? null,
    bytes: weightBytes.byteLength + modelText.length,
  };
}
