/**
 * The one list of reasons a read asked to map (`mmap: true`) was a copy instead. Every format
 * reports its copies with these words (an array's `copyReason`, a file's `mapReason`), so a
 * caller can match them and a reader finds every way a view can turn into a copy in one place.
 */
export const COPY_REASONS = {
  /** No addon (TENSORIO_NO_NATIVE=1, or no build for this platform): nothing can be mapped. */
  noAddon: 'the native addon is not loaded',
  /** An empty file has no pages to map. */
  emptyFile: 'the file is empty',
  /** The source is bytes the caller passed in: there is no file to map. */
  inMemory: 'the file is in memory',
  /** An archive read with positioned reads (mapping refused or not asked). */
  archiveNotMapped: 'the archive is not mapped',
  /** A file read with positioned reads (mapping refused or not asked). */
  fileNotMapped: 'the file is not mapped',
  /** A deflated archive member is inflated into fresh memory. */
  compressed: 'the member is compressed',
  /** Big-endian data is swapped into native order, which needs memory of its own. */
  bigEndianConverted: 'the data is big-endian and was converted to native order',
  /** HDF5's wording of the same. */
  bigEndian: 'the data is big-endian',
  /** The host or file system refused the mapping (external memory refused, no mmap). */
  mappingRefused: (message: string): string => `mapping refused: ${message}`,
  /** The data does not start on a multiple of its element size, so no TypedArray can view it. */
  unalignedOffset: (offset: number, dtype: string, itemSize: number): string => `the data offset ${offset} is not a multiple of the ${dtype} size ${itemSize}`,
  /** An HDF5 dataset stored in chunks, compactly or elsewhere: not one contiguous range. */
  layout: (layout: string): string => `the dataset is ${layout}`,
} as const;
