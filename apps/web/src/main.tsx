/**
 * One app, two pages chosen by pathname: `/dashboard` the operator dashboard, anything else
 * the volunteer page. Each page is its own chunk, so a volunteer never loads the charts and
 * the dashboard never loads the training worker.
 */
import { StrictMode, Suspense, lazy } from 'react';
import { createRoot } from 'react-dom/client';
import './styles.css';

const Dashboard = lazy(() => import('./dashboard/Dashboard.tsx'));
const Volunteer = lazy(() => import('./volunteer/Volunteer.tsx'));

const path = window.location.pathname.replace(/\/+$/, '');
const isDashboard = path === '/dashboard';
document.title = isDashboard ? 'swarmgrad · dashboard' : 'swarmgrad · donate compute';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Suspense fallback={<div className="boot">Loading…</div>}>
      {isDashboard ? <Dashboard /> : <Volunteer />}
    </Suspense>
  </StrictMode>,
);
