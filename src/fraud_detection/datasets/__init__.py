"""Kedro datasets that write atomically: a crash leaves the previous output or none, never half of one."""

from fraud_detection.datasets.csv import CSVDataset, CSVFolderDataset
from fraud_detection.datasets.file_hash import FileHashDataset
from fraud_detection.datasets.json import JSONDataset
from fraud_detection.datasets.parquet import DatePartitionsDataset, ParquetDataset, PartitionedParquetDataset
from fraud_detection.datasets.text import TextFilesDataset

__all__ = [
    "CSVDataset",
    "CSVFolderDataset",
    "DatePartitionsDataset",
    "FileHashDataset",
    "JSONDataset",
    "ParquetDataset",
    "PartitionedParquetDataset",
    "TextFilesDataset",
]
