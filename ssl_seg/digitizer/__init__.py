"""The curve digitizer: scans in, curves out (CSV, LAS), and the renders it is scored on.

The commands on top (`ssl_seg.predict`, `evaluate`, `render_las`, `archive_check`) hold only
their flags; the work is here, one room per step:
  scans, tiff, band_io   reading scans of any size and mode (a band of rows at a time where a
                         scan is too large), writing PNGs
  scan_layout            depth axis, tracks and their curves: crop a track, paste it back
  layout_files, shortcuts  a layout from a JSON file or a manifest, or from predict's flags
  tracks                 tracks found from a scan's border lines
  segmenter, resolution  a restored model run in fixed windows, at the scale a scan needs
  tiled                  segmenting a scan too large to hold whole, band by band
  mask_cleanup, runs, tracer  grid lines and specks dropped; curves traced through the mask
  curve_values           scales, the CSV columns, coverage and R²
  las                    the one LAS module: reading, the writer, NULL, depth windows
  digitize, overlay, replot, output_files  predict's per-scan work and what it writes
  evaluation             evaluate's scores; render, archive, archive_scores: the evaluation
                         logs and archives rendered from LAS files, and their scores
Importing the package imports nothing else: scan reading stays free of JAX.
"""
