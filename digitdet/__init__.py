"""digitdet: find and read every handwritten digit in a photo or scanned page (YOLOv8)."""
