"""The scene of a call (`rawcore.scene/1`): its model and rules (`model`), and building it from
a recording and the studio's event log. Imports `rawcore.media` and below."""
