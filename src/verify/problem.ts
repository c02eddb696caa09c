/** One thing found wrong: a stable code, where (a file, and a row), and what. */
export interface VerifyProblem {
  code:
    | 'unexpected_file'
    | 'missing_shard'
    | 'shard_damaged'
    | 'shard_schema'
    | 'shard_metadata'
    | 'shard_changed'
    | 'bad_image'
    | 'missing_card'
    | 'card_features'
    | 'card_splits'
    | 'card_data_files'
    | 'report_damaged'
    | 'missing_rejects'
    | 'rejects_damaged'
    | 'rows_differ';
  where: string;
  message: string;
}
