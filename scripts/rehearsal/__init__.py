"""The rehearsal: the paper profile end to end at toy size, offline, on a CPU.

``make rehearsal`` runs :mod:`scripts.rehearsal.run`: miniature archives in each paper
dataset's official format (:mod:`scripts.rehearsal.miniatures`) are served over HTTP from
127.0.0.1 and fetched, verified, extracted and split by the paper's own code; stand-in
weights fill a local Hugging Face cache (:mod:`scripts.rehearsal.hub`) that timm's pretrained
path reads; then every stage of the paper profile runs with ``profiles/rehearsal.yaml``.
"""
