"""What requests cost: the shipped price table, per-deployment overrides, GPU-time pricing."""

from gatecore.pricing.book import ModelPrice, PriceBook, table_price
from gatecore.pricing.gpu_time import GpuMeter

__all__ = ["GpuMeter", "ModelPrice", "PriceBook", "table_price"]
