/** The output's splits, in the order they are written, reported and listed in the card: TRL's script makes these two. */
export const SPLITS = ['train', 'test'] as const;

export type SplitName = (typeof SPLITS)[number];

/**
 * Rows per row group of every file the tool writes (the shards and the rejects): what `datasets` writes for image
 * data. Not an option: it is part of the format (shards put together from parts copy row groups on this grid).
 */
export const ROW_GROUP_SIZE = 100;
