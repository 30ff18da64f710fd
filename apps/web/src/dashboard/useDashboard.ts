/**
 * The dashboard's live state from the coordinator's read-only `/dashboard` socket.io
 * namespace: `history` on connect (evaluations, events, iteration series), `status` every
 * second, `evaluation` and `event` as they happen. Reconnects on its own; a reconnect's
 * `history` replaces what was held, so nothing is counted twice.
 */
import { useEffect, useReducer } from 'react';
import { io, type Socket } from 'socket.io-client';
import type {
  DashboardEvaluation,
  DashboardEvent,
  DashboardHistory,
  DashboardServerToClient,
  DashboardStatus,
} from '@swarmgrad/protocol';

export interface TrainingPoint {
  iteration: number;
  at: number;
  trainingLoss: number | null;
}

export interface DashboardState {
  connected: boolean;
  /** Statuses received (for tests and the freshness indicator). */
  statusCount: number;
  lastStatusAt: number | null;
  status: DashboardStatus | null;
  evaluations: DashboardEvaluation[];
  events: DashboardEvent[];
  iterations: TrainingPoint[];
  /** Iterations per second over the last ~10 s of statuses. */
  iterationRate: number | null;
  rateWindow: { at: number; iteration: number }[];
}

type Action =
  | { type: 'connected'; value: boolean }
  | { type: 'status'; status: DashboardStatus; receivedAt: number }
  | { type: 'history'; history: DashboardHistory }
  | { type: 'evaluation'; point: DashboardEvaluation }
  | { type: 'event'; event: DashboardEvent };

const MAX_EVENTS = 2000;
const MAX_POINTS = 20_000;

export const initialState: DashboardState = {
  connected: false,
  statusCount: 0,
  lastStatusAt: null,
  status: null,
  evaluations: [],
  events: [],
  iterations: [],
  iterationRate: null,
  rateWindow: [],
};

const capped = <T>(items: T[], max: number): T[] =>
  items.length > max ? items.slice(items.length - max) : items;

export function reducer(state: DashboardState, action: Action): DashboardState {
  switch (action.type) {
    case 'connected':
      return { ...state, connected: action.value };
    case 'history':
      return {
        ...state,
        evaluations: capped([...action.history.evaluations], MAX_POINTS),
        events: capped([...action.history.events], MAX_EVENTS),
        iterations: capped(
          action.history.iterations.map((p) => ({
            iteration: p.iteration,
            at: p.at,
            trainingLoss: p.trainingLoss,
          })),
          MAX_POINTS,
        ),
      };
    case 'evaluation': {
      if (
        state.evaluations.some(
          (e) => e.iteration === action.point.iteration && e.at === action.point.at,
        )
      )
        return state;
      return { ...state, evaluations: capped([...state.evaluations, action.point], MAX_POINTS) };
    }
    case 'event':
      return { ...state, events: capped([...state.events, action.event], MAX_EVENTS) };
    case 'status': {
      const status = action.status;
      let iterations = state.iterations;
      const last = iterations.at(-1);
      if (status.iteration > 0 && (!last || status.iteration > last.iteration)) {
        iterations = capped(
          [
            ...iterations,
            {
              iteration: status.iteration,
              at: status.serverTime,
              trainingLoss: status.trainingLoss,
            },
          ],
          MAX_POINTS,
        );
      }
      const window = [
        ...state.rateWindow.filter((p) => status.serverTime - p.at <= 10_000),
        { at: status.serverTime, iteration: status.iteration },
      ];
      const first = window[0]!;
      const span = (status.serverTime - first.at) / 1000;
      const iterationRate =
        status.phase !== 'training'
          ? 0
          : span >= 2
            ? Math.max(0, (status.iteration - first.iteration) / span)
            : state.iterationRate;
      return {
        ...state,
        status,
        statusCount: state.statusCount + 1,
        lastStatusAt: action.receivedAt,
        iterations,
        rateWindow: window,
        iterationRate,
      };
    }
  }
}

export function useDashboard(): DashboardState {
  const [state, dispatch] = useReducer(reducer, initialState);
  useEffect(() => {
    const socket: Socket<DashboardServerToClient> = io('/dashboard', {
      transports: ['websocket'],
      reconnectionDelayMax: 5000,
    });
    socket.on('connect', () => dispatch({ type: 'connected', value: true }));
    socket.on('disconnect', () => dispatch({ type: 'connected', value: false }));
    socket.on('status', (status) => dispatch({ type: 'status', status, receivedAt: Date.now() }));
    socket.on('history', (history) => dispatch({ type: 'history', history }));
    socket.on('evaluation', (point) => dispatch({ type: 'evaluation', point }));
    socket.on('event', (event) => dispatch({ type: 'event', event }));
    return () => {
      socket.disconnect();
    };
  }, []);
  return state;
}
