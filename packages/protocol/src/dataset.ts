/**
 * The dataset format: a manifest (JSON) listing binary partition files by SHA-256, the same
 * on disk (a pack built by `swarmgrad dataset pack`, docs/datasets.md), on another origin and
 * as the coordinator serves it to tabs (`GET /data/manifest.json`). The partition files'
 * binary layout is packages/worker/src/partition.ts.
 *
 * Guarantees: a manifest that passes `dataManifestSchema` has partitions numbered 0..P−1 in
 * order, lower-case hex SHA-256 hashes, sizes that match the partition layout
 * (16 + count · (features + 1) bytes), an `inputShape` whose product is `features` and at most
 * one label name per class. URLs are relative to the manifest's own URL (a pack's
 * `<sha256>.bin`) or absolute paths on the coordinator (`/data/<sha256>.bin`).
 */
import { z } from 'zod';

/** Version of the manifest format (`version` field); the partition layout has its own. */
export const DATA_MANIFEST_VERSION = 1;

/** 16-byte header of a partition file (partition.ts PARTITION_HEADER_BYTES). */
const HEADER_BYTES = 16;

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex SHA-256 (64 digits)');

/** One binary file of samples: where it is and what it must hash to. */
export const dataFileSchema = z
  .object({
    /** Samples in the file. */
    count: z.number().int().min(0),
    /** Size of the file in bytes. */
    bytes: z.number().int().min(HEADER_BYTES),
    /** Lower-case hex SHA-256 of the file. */
    sha256: sha256Schema,
    /** Relative to the manifest's URL, or an absolute path on the coordinator. */
    url: z.string().min(1).max(2048),
  })
  .strict();

export const partitionEntrySchema = dataFileSchema
  .extend({ index: z.number().int().min(0) })
  .strict();

export const dataManifestSchema = z
  .object({
    /** Format version (absent in manifests older than packs: read as 1). */
    version: z.literal(DATA_MANIFEST_VERSION).optional(),
    /** The dataset's name (the job's name for the built-in mnist preset). */
    job: z.string().min(1).max(128),
    /** Values per sample; each stored as one byte, read as byte / 255. */
    features: z
      .number()
      .int()
      .min(1)
      .max(1 << 24),
    /** Labels are 0..classes − 1. */
    classes: z.number().int().min(1).max(255),
    /** Shape of one sample (e.g. [28, 28, 1]); its product is `features`. */
    inputShape: z.array(z.number().int().positive()).min(1).max(4).optional(),
    /** Names of the classes, by label (e.g. the CSV's label strings). */
    labels: z.array(z.string().max(256)).optional(),
    /**
     * How numeric features were scaled into [0, 1] before quantisation (CSV packs): value x of
     * feature i was stored as round(255 · clamp((x − min[i]) / (max[i] − min[i]), 0, 1)).
     */
    normalization: z
      .object({ min: z.array(z.number()), max: z.array(z.number()) })
      .strict()
      .optional(),
    /** Where the samples came from (file names), for people. */
    source: z.string().max(1024).optional(),
    /** Training partitions, in index order. */
    partitions: z.array(partitionEntrySchema).min(1).max(4096),
    /** Samples in the held-out split. */
    heldOutCount: z.number().int().min(0),
    /** The held-out split (same binary layout); in packs, not in what tabs are served. */
    heldOut: dataFileSchema.optional(),
  })
  .strict()
  .superRefine((manifest, ctx) => {
    const sizeOf = (count: number) => HEADER_BYTES + count * (manifest.features + 1);
    manifest.partitions.forEach((entry, i) => {
      if (entry.index !== i) {
        ctx.addIssue({
          code: 'custom',
          path: ['partitions', i, 'index'],
          message: `partition ${i} has index ${entry.index}`,
        });
      }
      if (entry.bytes !== sizeOf(entry.count)) {
        ctx.addIssue({
          code: 'custom',
          path: ['partitions', i, 'bytes'],
          message: `${entry.count} samples of ${manifest.features} features take ${sizeOf(entry.count)} bytes, not ${entry.bytes}`,
        });
      }
    });
    if (manifest.heldOut) {
      if (manifest.heldOut.count !== manifest.heldOutCount) {
        ctx.addIssue({
          code: 'custom',
          path: ['heldOut', 'count'],
          message: `heldOutCount is ${manifest.heldOutCount}, heldOut.count ${manifest.heldOut.count}`,
        });
      }
      if (manifest.heldOut.bytes !== sizeOf(manifest.heldOut.count)) {
        ctx.addIssue({
          code: 'custom',
          path: ['heldOut', 'bytes'],
          message: `${manifest.heldOut.count} samples take ${sizeOf(manifest.heldOut.count)} bytes, not ${manifest.heldOut.bytes}`,
        });
      }
    }
    if (manifest.inputShape) {
      const product = manifest.inputShape.reduce((a, b) => a * b, 1);
      if (product !== manifest.features) {
        ctx.addIssue({
          code: 'custom',
          path: ['inputShape'],
          message: `[${manifest.inputShape.join(', ')}] holds ${product} values, features is ${manifest.features}`,
        });
      }
    }
    if (manifest.labels && manifest.labels.length > manifest.classes) {
      ctx.addIssue({
        code: 'custom',
        path: ['labels'],
        message: `${manifest.labels.length} label names for ${manifest.classes} classes`,
      });
    }
    if (manifest.normalization) {
      const { min, max } = manifest.normalization;
      if (min.length !== manifest.features || max.length !== manifest.features) {
        ctx.addIssue({
          code: 'custom',
          path: ['normalization'],
          message: `needs ${manifest.features} min and max values`,
        });
      }
    }
  });

export type DataFile = z.infer<typeof dataFileSchema>;
export type PartitionEntry = z.infer<typeof partitionEntrySchema>;
export type DataManifest = z.infer<typeof dataManifestSchema>;
