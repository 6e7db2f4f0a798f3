"""Taking a trained model out of gankit, and back in: ONNX files (:mod:`.onnx_file`) and model folders in the
Hugging Face Hub's layout (:mod:`.folder`, :mod:`.card`; :mod:`.hub` uploads and downloads them).

The API's :func:`gankit.export` calls these with a loaded run; which module is exported, and what its inputs mean,
is the family's to say (:meth:`gankit.tasks.Task.export_graph`, :meth:`gankit.tasks.Task.used_modules`).
"""
