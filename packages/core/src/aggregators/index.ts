export * from './aggregator.ts';
export * from './mean.ts';
export * from './cge.ts';
export * from './coordinate-median.ts';
export * from './trimmed-mean.ts';
export * from './krum.ts';
export * from './centered-clipping.ts';
export * from './sign-majority.ts';
export * from './bucketing.ts';

import { registerAggregator } from './aggregator.ts';
import { createBucketing } from './bucketing.ts';
import { createCenteredClipping } from './centered-clipping.ts';
import { createCge } from './cge.ts';
import { createCoordinateMedian } from './coordinate-median.ts';
import { createKrum, createMultiKrum } from './krum.ts';
import { createMean } from './mean.ts';
import { createSignMajority } from './sign-majority.ts';
import { createTrimmedMean } from './trimmed-mean.ts';

registerAggregator('mean', createMean);
registerAggregator('cge', createCge);
registerAggregator('median', createCoordinateMedian);
registerAggregator('trimmed-mean', createTrimmedMean);
registerAggregator('krum', createKrum);
registerAggregator('multi-krum', createMultiKrum);
registerAggregator('centered-clipping', createCenteredClipping);
registerAggregator('sign-majority', createSignMajority);
registerAggregator('bucketing', createBucketing);
